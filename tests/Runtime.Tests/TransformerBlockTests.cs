using System.Linq;
using ModelParallel.Communication;
using ModelParallel.Examples.Transformer;
using ModelParallel.Tests.Models;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace ModelParallel.Tests
{
    /// <summary>
    /// The example's transformer block, partitioned by its attributes alone, against the independent plain
    /// reference (attention written out): outputs, loss, every gathered gradient and the parameters after 3 Adam
    /// steps, within relative 1e-5; and exactly 2 all-reduces forward and 2 backward per block.
    /// </summary>
    [Trait("Category", "Equivalence")]
    public sealed class TransformerBlockTests
    {
        private const long Width = 16, Heads = 4, Hidden = 32, Batch = 3, Time = 5;
        private const int Depth = 2;

        [Theory]
        [InlineData(1)]
        [InlineData(2)]
        [InlineData(4)]
        public void MatchesTheSingleDeviceBlock(int tp)
        {
            torch.manual_seed(31);
            var reference = new BlockStack<ReferenceTransformerBlock>(Depth, () => new ReferenceTransformerBlock(Width, Heads, Hidden));
            var logical = reference.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.detach().clone());
            var batches = Enumerable.Range(0, 3).Select(_ => (torch.randn(Batch, Time, Width), torch.randn(Batch, Time, Width))).ToList();
            var expected = TrainingRun.Train(reference, batches, m => m.named_parameters().ToDictionary(p => p.name, p => p.parameter.grad!.clone()),
                m => m.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.detach().clone()));

            var results = Ranks.Run(new MeshShape(tp: tp), context =>
            {
                var model = new BlockStack<TransformerBlock>(Depth, () => new TransformerBlock(Width, Heads, Hidden));
                LogicalState.Load(model, logical);
                return TrainingRun.Train(model, batches, LogicalState.ExportGradients, LogicalState.Export);
            });

            foreach (var (actual, rank) in results.Select((r, i) => (r, i)))
                TensorAssert.SameTraining(expected, actual, $"tp={tp} rank {rank}, 3 steps");
        }

        [Theory]
        [InlineData(2)]
        [InlineData(4)]
        public void TwoAllReducesForwardAndTwoBackwardPerBlock(int tp)
        {
            var counts = Ranks.Run(new MeshShape(tp: tp), context =>
            {
                var counting = (CountingCommunicator)context.TensorParallel;
                var model = new BlockStack<TransformerBlock>(Depth, () => new TransformerBlock(Width, Heads, Hidden));
                counting.Reset();
                var loss = model.forward(torch.ones(Batch, Time, Width)).sum();
                var forward = (counting.Calls(CollectiveKind.AllReduce), counting.TotalCalls, counting.Elements(CollectiveKind.AllReduce));
                counting.Reset();
                loss.backward();
                return (Forward: forward, Backward: (counting.Calls(CollectiveKind.AllReduce), counting.TotalCalls, counting.Elements(CollectiveKind.AllReduce)));
            }, CountingRun.TensorParallel);

            // Each all-reduce carries one activation: batch x time x width elements.
            var perBlock = (Calls: 2, Total: 2, Elements: 2 * Batch * Time * Width);
            foreach (var (forward, backward) in counts)
            {
                Assert.Equal((Depth * perBlock.Calls, Depth * perBlock.Total, Depth * perBlock.Elements), forward);
                Assert.Equal((Depth * perBlock.Calls, Depth * perBlock.Total, Depth * perBlock.Elements), backward);
            }
        }

        [Fact]
        public void HeadsNotDivisibleByTpAreAClearErrorNamingTheLayer()
        {
            var error = Assert.Throws<RankFailedException>(() => Ranks.Run(new MeshShape(tp: 4), context =>
                new TransformerBlock(width: 12, heads: 3, hidden: 16).forward(torch.ones(1, 2, 12))));
            Assert.Contains("TransformerBlock.forward at TransformerBlock.cs(", error.ToString());
            Assert.Contains("has size 3, not divisible by tp = 4", error.ToString());
            Assert.Contains("the number of heads must be divisible by tp", error.ToString());
        }
    }
}
