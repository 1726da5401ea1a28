using System.Linq;
using ModelParallel.Tests.Models;
using TorchSharp;
using Xunit;

namespace ModelParallel.Tests
{
    /// <summary><see cref="Ranks.Validate"/>: a bad mesh is one readable error before any work, a good one builds nothing real.</summary>
    [Trait("Category", "Runtime")]
    public sealed class MeshValidationTests
    {
        private static readonly ModelShape Shape = new(Features: 8, Width: 16, Hidden: 32, Outputs: 4, Depth: 2, Bias: true);

        [Fact]
        public void ASizeTheTensorParallelAxisDoesNotDivideNamesTheLayerTheDimensionAndTheMesh()
        {
            var error = Assert.Throws<PartitionException>(() => Ranks.Validate(new MeshShape(tp: 3), () => new TestModel(Shape)));
            Assert.Equal("Layer 'ModelParallel.Tests.Models.TestBlock.up' (ColumnParallel): out_features = 32 is not divisible by tp = 3 (mesh dp=1 × pp=1 × tp=3).",
                error.Message);
        }

        [Fact]
        public void MorePipelineStagesThanBlocksIsRefusedNamingTheList()
        {
            var error = Assert.Throws<PartitionException>(() => Ranks.Validate(new MeshShape(pp: 4), () => new PipelineTestModel(Shape)));
            Assert.Contains("'ModelParallel.Tests.Models.PipelineTestModel.blocks' has 2 blocks, fewer than the 4 pipeline stages", error.Message);
        }

        [Fact]
        public void AMeshThatFitsBuildsEveryRanksShardsOnTheMetaDevice()
        {
            Ranks.Validate(new MeshShape(dp: 2, pp: 2, tp: 2), () =>
            {
                var model = new PipelineTestModel(Shape);
                Assert.All(model.parameters(), p => Assert.Equal(DeviceType.META, p.device.type));
                Assert.Equal(new long[] { Shape.Hidden / 2, Shape.Width }, model.named_parameters().Single(p => p.name == "blocks.0.up.weight").parameter.shape);
                return model;
            });
        }
    }
}
