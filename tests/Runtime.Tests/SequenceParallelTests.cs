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

        [Fact]
        public void DataParallelTimesSequenceParallelMatchesTheSingleDeviceStack()
        {
            torch.manual_seed(41);
            var reference = new PlainSequenceParallelStack(Depth, Width, Heads, Hidden);
            var logical = reference.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.detach().clone());
            var batches = Enumerable.Range(0, 3).Select(_ => (torch.randn(2 * Batch, Time, Width), torch.randn(2 * Batch, Time, Width))).ToList();
            var expected = TrainingRun.Train(reference, batches, m => m.named_parameters().ToDictionary(p => p.name, p => p.parameter.grad!.clone()),
                m => m.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.detach().clone()));

            var results = Ranks.Run(new MeshShape(dp: 2, tp: 2), context =>
            {
                var model = new SequenceParallelStack(Depth, Width, Heads, Hidden);
                LogicalState.Load(model, logical);
                var gradients = DataParallel.DataParallelGradients.Attach(model, bucketElements: 500);
                int d = context.Coordinates.Dp;
                var local = batches.Select(b => (b.Item1.narrow(0, d * Batch, Batch), b.Item2.narrow(0, d * Batch, Batch))).ToList();
                var outcome = TrainingRun.Train(model, local, LogicalState.ExportGradients, LogicalState.Export, gradients.Synchronize);
                var loss = outcome.Loss.clone();
                context.DataParallel.AllReduce(loss, ReduceOp.Average);
                return (Replica: d, Loss: loss, outcome.Output, outcome.Gradients, outcome.Parameters);
            });

            foreach (var actual in results)
            {
                TensorAssert.Close(expected.Loss, actual.Loss, "mean loss over dp");
                TensorAssert.Close(expected.Output.narrow(0, actual.Replica * Batch, Batch), actual.Output, $"replica {actual.Replica}'s output");
                foreach (var (name, gradient) in expected.Gradients) TensorAssert.Close(gradient, actual.Gradients[name], $"gradient of {name}");
                foreach (var (name, parameter) in expected.Parameters) TensorAssert.Close(parameter, actual.Parameters[name], $"{name} after 3 Adam steps");
            }
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
