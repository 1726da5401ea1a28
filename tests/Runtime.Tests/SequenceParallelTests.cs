using System.Linq;
using ModelParallel.Communication;
using ModelParallel.Tests.Models;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace ModelParallel.Tests
{
    /// <summary>
    /// Sequence parallelism declared on the block ([ParallelModule(SequenceParallel = true)]): against the plain
    /// single-device stack (attention written out), and the collectives Megatron's SP needs, counted.
    /// </summary>
    [Trait("Category", "Equivalence")]
    public sealed class SequenceParallelTests
    {
        private const long Width = 16, Heads = 4, Hidden = 32, Batch = 2, Time = 8;
        private const int Depth = 2;

        [Theory]
        [InlineData(1)]
        [InlineData(2)]
        [InlineData(4)]
        public void MatchesTheSingleDeviceStack(int tp)
        {
            torch.manual_seed(37);
            var reference = new PlainSequenceParallelStack(Depth, Width, Heads, Hidden);
            var logical = reference.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.detach().clone());
            var batches = Enumerable.Range(0, 3).Select(_ => (torch.randn(Batch, Time, Width), torch.randn(Batch, Time, Width))).ToList();
            var expected = TrainingRun.Train(reference, batches, m => m.named_parameters().ToDictionary(p => p.name, p => p.parameter.grad!.clone()),
                m => m.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.detach().clone()));

            var results = Ranks.Run(new MeshShape(tp: tp), context =>
            {
                var model = new SequenceParallelStack(Depth, Width, Heads, Hidden);
                LogicalState.Load(model, logical);
                return TrainingRun.Train(model, batches, LogicalState.ExportGradients, LogicalState.Export);
            });

            foreach (var (actual, rank) in results.Select((r, i) => (r, i)))
                TensorAssert.SameTraining(expected, actual, $"tp={tp} rank {rank}, 3 steps");
        }

        [Theory]
        [InlineData(2)]
        [InlineData(4)]
        public void TwoAllGathersAndTwoReduceScattersPerBlockEachWay(int tp)
        {
            var counts = Ranks.Run(new MeshShape(tp: tp), context =>
            {
                var counting = (CountingCommunicator)context.TensorParallel;
                var model = new SequenceParallelStack(Depth, Width, Heads, Hidden);
                counting.Reset();
                var loss = model.forward(torch.ones(Batch, Time, Width)).sum();
                var forward = Count(counting);
                counting.Reset();
                loss.backward();
                return (Forward: forward, Backward: Count(counting));
            }, CountingRun.TensorParallel);

            foreach (var (forward, backward) in counts)
            {
                // Per block: all-gather before qkv and up, reduce-scatter after projection and down. Around the blocks: the
                // final up all-gathers the stream, down all-reduces its output (the stack itself is not sequence parallel).
                Assert.Equal((AllGather: 2 * Depth + 1, ReduceScatter: 2 * Depth, AllReduce: 1), forward);
                // Backward, the conjugates: each all-gather's backward is a reduce-scatter and each reduce-scatter's an
                // all-gather; the input split's backward all-gathers once more. All-reduces: the gradients of each norm's
                // weight and bias (2 norms per block, and the stack's final norm) and of each RowParallel bias in a block
                // (projection, down), which each rank computes from its own tokens.
                Assert.Equal((AllGather: 2 * Depth + 1, ReduceScatter: 2 * Depth + 1, AllReduce: Depth * (2 * 2 + 2) + 2), backward);
            }
        }

        [Fact]
        public void ASequenceThatDoesNotSplitOverTpIsAClearErrorNamingTheSite()
        {
            var error = Assert.Throws<RankFailedException>(() => Ranks.Run(new MeshShape(tp: 4), _ =>
                new SequenceParallelStack(1, Width, Heads, Hidden).forward(torch.ones(Batch, 6, Width)).shape));
            Assert.IsType<PartitionException>(error.InnerException);
            Assert.Contains("SequenceParallelStack", error.InnerException!.Message);
            Assert.Contains("sequence (dimension -2) of 6, which does not split over tp = 4", error.InnerException.Message);
        }

        private static (int AllGather, int ReduceScatter, int AllReduce) Count(CountingCommunicator counting) =>
            (counting.Calls(CollectiveKind.AllGather), counting.Calls(CollectiveKind.ReduceScatter), counting.Calls(CollectiveKind.AllReduce));
    }
}
