using System;
using Xunit;

namespace ModelParallel.Tests
{
    [Trait("Category", "Runtime")]
    public sealed class MeshShapeTests
    {
        [Fact]
        public void TensorParallelRanksAreNeighbours()
        {
            var mesh = new MeshShape(dp: 2, pp: 3, tp: 2);
            Assert.Equal(12, mesh.World);
            Assert.Equal(new MeshCoordinates(0, 0, 1), mesh.CoordinatesOf(1));
            Assert.Equal(new MeshCoordinates(0, 1, 0), mesh.CoordinatesOf(2));
            Assert.Equal(new MeshCoordinates(1, 0, 0), mesh.CoordinatesOf(6));
            Assert.Equal(new MeshCoordinates(1, 2, 1), mesh.CoordinatesOf(11));
            for (int rank = 0; rank < mesh.World; rank++) Assert.Equal(rank, mesh.RankOf(mesh.CoordinatesOf(rank)));
        }

        [Fact]
        public void RejectsEmptyAxes()
        {
            var error = Assert.Throws<ArgumentOutOfRangeException>(() => new MeshShape(tp: 0));
            Assert.Contains("tp=0", error.Message);
        }

        [Fact]
        public void PerAxisCommunicatorsGroupTheRightRanks()
        {
            // tp groups are {0,1} and {2,3}; dp groups are {0,2} and {1,3}.
            var groups = Ranks.Run(new MeshShape(dp: 2, tp: 2), context =>
                (Tp: (context.TensorParallel.Rank, context.TensorParallel.Size), Dp: (context.DataParallel.Rank, context.DataParallel.Size), World: context.World.Size));
            for (int rank = 0; rank < 4; rank++)
            {
                Assert.Equal((rank % 2, 2), groups[rank].Tp);
                Assert.Equal((rank / 2, 2), groups[rank].Dp);
                Assert.Equal(4, groups[rank].World);
            }
        }

        [Fact]
        public void ANewMeshWithoutArgumentsIsOneRankAndTheDefaultMeshIsRefused()
        {
            Assert.Equal((1, 1, 1, 1), (new MeshShape().Dp, new MeshShape().Pp, new MeshShape().Tp, new MeshShape().World));
            Assert.Single(Ranks.Run(new MeshShape(), context => context.Rank));
            var error = Assert.Throws<ArgumentException>(() => Ranks.Run(default(MeshShape), context => context.Rank));
            Assert.Contains("The mesh has no ranks (dp=0, pp=0, tp=0): it is default(MeshShape).", error.Message);
        }
    }
}
