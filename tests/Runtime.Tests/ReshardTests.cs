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

        private static void Check(int tp, Func<nn.Module<Tensor, Tensor>> plain, Func<nn.Module<Tensor, Tensor>> partitioned, long inputs)
        {
            torch.manual_seed(41);
            var reference = plain();
            var logical = reference.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.detach().clone());
            var batches = Enumerable.Range(0, 3).Select(_ => (torch.randn(4, inputs), torch.randn(4, Width))).ToList();
            var expected = TrainingRun.Train(reference, batches, m => m.named_parameters().ToDictionary(p => p.name, p => p.parameter.grad!.clone()),
                m => m.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.detach().clone()));
            var results = Parallel.Run(new MeshShape(tp: tp), context =>
            {
                var model = partitioned();
                LogicalState.Load(model, logical);
                return TrainingRun.Train(model, batches, LogicalState.ExportGradients, LogicalState.Export);
            });
            foreach (var actual in results)
            {
                TensorAssert.Close(expected.Output, actual.Output, $"tp={tp}: output");
                foreach (var (name, gradient) in expected.Gradients) TensorAssert.Close(gradient, actual.Gradients[name], $"tp={tp}: gradient of {name}");
                foreach (var (name, parameter) in expected.Parameters) TensorAssert.Close(parameter, actual.Parameters[name], $"tp={tp}: {name} after 3 Adam steps");
            }
        }
    }
}
