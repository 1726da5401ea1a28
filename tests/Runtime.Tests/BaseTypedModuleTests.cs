using System.Linq;
using ModelParallel.Tests.Models;
using TorchSharp;
using Xunit;

namespace ModelParallel.Tests
{
    /// <summary>A sub-module held through nn.Module&lt;Tensor, Tensor&gt;: the generated call's run-time check.</summary>
    public sealed class BaseTypedModuleTests
    {
        [Fact]
        public void AShardedOutputThroughTheBaseTypeIsAClearErrorNamingTheSite()
        {
            var error = Assert.Throws<RankFailedException>(() => Ranks.Run(new MeshShape(tp: 2), _ =>
                new BaseTypedParent(sharded: true).forward(torch.ones(3, 2)).shape));
            Assert.IsType<PartitionException>(error.InnerException);
            Assert.Contains("BaseTypedParent.inner at BaseTypedModels.cs(", error.InnerException!.Message);
            Assert.Contains("'NarrowShardedHead' is a [ParallelModule] whose forward returns S(-1)", error.InnerException.Message);
        }

        [Fact]
        public void AShardedOutputInsideSequentialIsAClearErrorNamingTheSite()
        {
            var error = Assert.Throws<RankFailedException>(() => Ranks.Run(new MeshShape(tp: 2), _ =>
                new SequentialParent().forward(torch.ones(3, 2)).shape));
            Assert.IsType<PartitionException>(error.InnerException);
            Assert.Contains("SequentialParent.inner at BaseTypedModels.cs(", error.InnerException!.Message);
            Assert.Contains("'Sequential' holds the [ParallelModule] 'NarrowShardedHead'", error.InnerException.Message);
        }

        [Fact]
        public void AWholeOutputThroughTheBaseTypeMatchesOneDevice()
        {
            torch.manual_seed(7);
            var reference = new PlainBaseTypedParent();
            var logical = reference.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.detach().clone());
            var batches = Enumerable.Range(0, 3).Select(_ => (torch.randn(3, 2), torch.randn(3, 2))).ToList();
            var expected = TrainingRun.Train(reference, batches, m => m.named_parameters().ToDictionary(p => p.name, p => p.parameter.grad!.clone()),
                m => m.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.detach().clone()));
            var results = Ranks.Run(new MeshShape(tp: 2), _ =>
            {
                var model = new BaseTypedParent(sharded: false);
                LogicalState.Load(model, logical);
                return TrainingRun.Train(model, batches, LogicalState.ExportGradients, LogicalState.Export);
            });
            foreach (var actual in results) TensorAssert.SameTraining(expected, actual, "tp=2, 3 steps");
        }
    }
}
