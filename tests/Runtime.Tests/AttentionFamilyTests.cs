using System;
using System.Linq;
using ModelParallel.Tests.Models;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace ModelParallel.Tests
{
    /// <summary>
    /// Today's attention families, partitioned by attributes alone, against their plain single-device forms: grouped-query
    /// attention with rotary embeddings (repeat_interleave of sharded heads, replicated tables broadcast over them, a
    /// helper method), grouped-query attention through unsqueeze / expand / reshape, and multi-query attention (whole
    /// keys and values, sliced to each rank's heads), and a LayerNorm over each sharded query and key head.
    /// </summary>
    [Trait("Category", "Equivalence")]
    public sealed class AttentionFamilyTests
    {
        [Theory]
        [InlineData(1)]
        [InlineData(2)]
        [InlineData(4)]
        public void GroupedQueryAttentionWithRotaryEmbeddingsMatchesOneDevice(int tp) =>
            Check(tp, () => new PlainGroupedQueryAttention(), () => new GroupedQueryAttention(), GroupedQueryAttention.Width);

        [Theory]
        [InlineData(1)]
        [InlineData(2)]
        [InlineData(4)]
        public void GroupedQueryAttentionThroughExpandMatchesOneDevice(int tp) =>
            Check(tp, () => new PlainExpandedGroupedQueryAttention(), () => new ExpandedGroupedQueryAttention(), ExpandedGroupedQueryAttention.Width);

        [Theory]
        [InlineData(1)]
        [InlineData(2)]
        [InlineData(4)]
        public void MultiQueryAttentionMatchesOneDevice(int tp) =>
            Check(tp, () => new PlainMultiQueryAttention(), () => new MultiQueryAttention(), MultiQueryAttention.Width);

        [Theory]
        [InlineData(1)]
        [InlineData(2)]
        [InlineData(4)]
        public void QueryKeyNormOverShardedHeadsMatchesOneDevice(int tp) =>
            Check(tp, () => new PlainQueryKeyNormAttention(), () => new QueryKeyNormAttention(), QueryKeyNormAttention.Width);

        [Fact]
        public void KeyHeadsNotDivisibleByTpAreAClearErrorNamingTheSite()
        {
            // 4 key/value heads over tp = 8: the view of the keys cannot carry the shard.
            var error = Assert.Throws<RankFailedException>(() => Ranks.Run(new MeshShape(tp: 8), _ =>
            {
                using var model = new GroupedQueryAttention();
                return model.forward(torch.randn(1, 3, GroupedQueryAttention.Width)).shape;
            }));
            Assert.IsType<PartitionException>(error.InnerException);
            Assert.Contains("GroupedQueryAttention", error.InnerException!.Message);
        }

        private static void Check(int tp, Func<nn.Module<Tensor, Tensor>> plain, Func<nn.Module<Tensor, Tensor>> partitioned, long width)
        {
            torch.manual_seed(43);
            var reference = plain();
            var logical = reference.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.detach().clone());
            var batches = Enumerable.Range(0, 3).Select(_ => (torch.randn(2, 5, width), torch.randn(2, 5, width))).ToList();
            var expected = TrainingRun.Train(reference, batches, m => m.named_parameters().ToDictionary(p => p.name, p => p.parameter.grad!.clone()),
                m => m.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.detach().clone()));
            var results = Ranks.Run(new MeshShape(tp: tp), context =>
            {
                var model = partitioned();
                LogicalState.Load(model, logical);
                return TrainingRun.Train(model, batches, LogicalState.ExportGradients, LogicalState.Export);
            });
            foreach (var actual in results) TensorAssert.SameTraining(expected, actual, $"tp={tp}, 3 steps");
        }
    }
}
