using System;
using System.Linq;
using ModelParallel.Tests.Models;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace ModelParallel.Tests
{
    /// <summary>The reshardings the generator inserts (all-gather before a second ColumnParallel layer, local slice before a RowParallel one) compute the single-device model.</summary>
    [Trait("Category", "Equivalence")]
    public sealed class ReshardTests
    {
        private const long Width = 8;

        [Theory]
        [InlineData(2)]
        [InlineData(4)]
        public void AGatheredSecondColumnLayerMatchesOneDevice(int tp) =>
            Check(tp, () => new PlainColumnColumnRow(Width), () => new ColumnColumnRow(Width), Width);

        [Theory]
        [InlineData(2)]
        [InlineData(4)]
        public void ASlicedRowLayerMatchesOneDevice(int tp) =>
            Check(tp, () => new PlainRow(Width), () => new RowOnReplicated(Width), 2 * Width);

        [Theory]
        [InlineData(2)]
        [InlineData(4)]
        public void PartialSumsAddedThenReducedOnceMatchOneDevice(int tp) =>
            Check(tp, () => new PlainTwoBranches(Width), () => new TwoBranches(Width), Width);

        [Theory]
        [InlineData(2)]
        [InlineData(4)]
        public void APartialSumReduceScatteredIntoARowLayerMatchesOneDevice(int tp) =>
            Check(tp, () => new PlainPartialIntoRow(Width), () => new PartialIntoRow(Width), Width);

        [Theory]
        [InlineData(2)]
        [InlineData(4)]
        public void ASubModulesShardedOutputFeedingARowLayerMatchesOneDevice(int tp) =>
            Check(tp, () => new PlainSplitAcrossModules(Width), () => new SplitAcrossModules(Width), Width);

        [Theory]
        [InlineData(2)]
        [InlineData(4)]
        public void PartialRowLayersOnReplicatedAndPartialInputsMatchOneDevice(int tp) =>
            Check(tp, () => new PlainPartialChain(Width), () => new PartialChain(Width), Width);

        [Theory]
        [InlineData(2)]
        [InlineData(4)]
        public void AHandWrittenRmsNormBeforeAPartitionedMlpMatchesOneDevice(int tp) =>
            Check(tp, () => new PlainRmsNormBlock(Width, 4 * Width), () => new RmsNormBlock(Width, 4 * Width), Width);

        [Fact]
        public void PartialSumsAreReducedOnceWhereNeeded()
        {
            var counts = Ranks.Run(new MeshShape(tp: 2), context =>
            {
                var counting = (Communication.CountingCommunicator)context.TensorParallel;
                var model = new TwoBranches(Width);
                counting.Reset();
                var loss = model.forward(torch.ones(3, Width)).sum();
                int forward = counting.Calls(Communication.CollectiveKind.AllReduce);
                counting.Reset();
                loss.backward();
                return (forward, backward: counting.Calls(Communication.CollectiveKind.AllReduce));
            }, CountingRun.TensorParallel);
            // Forward: one reduction of the summed partials before c, and d's g (3 without ReduceOutput = false).
            // Backward: c's f only; the input needs no gradient, so a1's and a2's f do not run.
            Assert.All(counts, c => Assert.Equal((2, 1), c));
        }

        private static void Check(int tp, Func<nn.Module<Tensor, Tensor>> plain, Func<nn.Module<Tensor, Tensor>> partitioned, long inputs)
        {
            torch.manual_seed(41);
            var reference = plain();
            var logical = reference.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.detach().clone());
            var batches = Enumerable.Range(0, 3).Select(_ => (torch.randn(4, inputs), torch.randn(4, Width))).ToList();
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
