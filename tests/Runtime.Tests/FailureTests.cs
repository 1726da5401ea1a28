using System;
using System.Diagnostics;
using ModelParallel.Communication;
using ModelParallel.Tests.Models;
using TorchSharp;
using Xunit;

namespace ModelParallel.Tests
{
    /// <summary>A failing or diverging rank ends the run with an error naming it, never a hang.</summary>
    [Trait("Category", "Runtime")]
    public sealed class FailureTests
    {
        private static readonly TimeSpan Soon = TimeSpan.FromSeconds(10);

        [Fact]
        public void ARankThatThrowsEndsTheRunAndIsNamed()
        {
            var clock = Stopwatch.StartNew();
            var error = Assert.Throws<RankFailedException>(() => Ranks.Run(new MeshShape(tp: 4), context =>
            {
                if (context.Rank == 2) throw new InvalidOperationException("boom on purpose");
                // The others wait in a collective rank 2 never joins; the abort must release them.
                context.TensorParallel.AllReduce(torch.ones(3));
            }));
            Assert.True(clock.Elapsed < Soon, $"took {clock.Elapsed}");
            Assert.Equal(2, error.Rank);
            Assert.Contains("Rank 2", error.Message);
            Assert.Contains("boom on purpose", error.Message);
            Assert.IsType<InvalidOperationException>(error.InnerException);
        }

        [Fact]
        public void ARankThatSkipsALayerIsCaughtAtTheNextCollectiveThoughItHasTheSameShape()
        {
            var error = Assert.Throws<RankFailedException>(() => Ranks.Run(new MeshShape(tp: 2), context =>
            {
                var first = new TestBlock(8, 16, bias: true);
                var second = new TestBlock(8, 16, bias: true);
                var h = torch.ones(3, 8);
                if (context.Rank == 0) h = first.forward(h); // a rank-dependent branch around a partitioned layer
                second.forward(h);
            }));
            var mismatch = Assert.IsType<CollectiveMismatchException>(error.InnerException);
            // Both are AllReduce #0 of float32[3, 8]; only the site (the layer instance) differs.
            Assert.Contains("at 'ModelParallel.Tests.Models.TestBlock.down #1'", mismatch.Message);
            Assert.Contains("at 'ModelParallel.Tests.Models.TestBlock.down #3'", mismatch.Message);
        }

        [Fact]
        public void MismatchedShapesAreReportedNotHung()
        {
            var error = Assert.Throws<RankFailedException>(() => Ranks.Run(new MeshShape(tp: 2), context =>
                context.TensorParallel.AllReduce(torch.ones(context.Rank + 2))));
            var mismatch = Assert.IsType<CollectiveMismatchException>(error.InnerException);
            Assert.Contains("float32[2]", mismatch.Message);
            Assert.Contains("float32[3]", mismatch.Message);
        }

        [Fact]
        public void AnExtraCollectiveOnOneRankIsReportedNotHung()
        {
            var clock = Stopwatch.StartNew();
            var error = Assert.Throws<RankFailedException>(() => Ranks.Run(new MeshShape(tp: 2), context =>
            {
                context.TensorParallel.AllReduce(torch.ones(2));
                if (context.Rank == 1) context.TensorParallel.AllReduce(torch.ones(2));
            }));
            Assert.True(clock.Elapsed < Soon, $"took {clock.Elapsed}");
            Assert.Equal(1, error.Rank);
            Assert.Contains("finished its body", error.InnerException!.Message);
        }

        [Fact]
        public void AReceiveWithoutASendIsReportedNotHung()
        {
            var error = Assert.Throws<RankFailedException>(() => Ranks.Run(new MeshShape(tp: 2), context =>
            {
                if (context.Rank == 0) context.TensorParallel.Receive(torch.zeros(2), source: 1);
            }));
            Assert.Contains("without sending", error.InnerException!.Message);
        }

        [Fact]
        public void AFailureWhileOthersRunBackwardEndsTheRun()
        {
            // Rank 1 fails before backward; rank 0 is then blocked in the all-reduce of f's backward, inside
            // TorchSharp's native autograd engine. The failure must surface without ending the process.
            var shape = new ModelShape(4, 8, 16, 2, Depth: 1, Bias: true);
            var clock = Stopwatch.StartNew();
            var error = Assert.Throws<RankFailedException>(() => Ranks.Run(new MeshShape(tp: 2), context =>
            {
                var model = new TestModel(shape);
                var loss = model.forward(torch.ones(3, 4)).sum();
                if (context.Rank == 1) throw new InvalidOperationException("rank 1 gives up");
                loss.backward();
                model.forward(torch.ones(3, 4));
            }));
            Assert.True(clock.Elapsed < Soon, $"took {clock.Elapsed}");
            Assert.Equal(1, error.Rank);
            Assert.Contains("rank 1 gives up", error.Message);
        }

        [Fact]
        public void IndivisibleLayerSizesNameTheLayerDimensionAndMesh()
        {
            var error = Assert.Throws<RankFailedException>(() => Ranks.Run(new MeshShape(tp: 4), _ =>
                new TestModel(new ModelShape(4, 8, Hidden: 10, 2, Depth: 1, Bias: true))));
            var inner = Assert.IsType<PartitionException>(error.InnerException);
            Assert.Contains("ModelParallel.Tests.Models.TestBlock.up", inner.Message);
            Assert.Contains("out_features = 10", inner.Message);
            Assert.Contains("tp = 4", inner.Message);
        }
    }
}
