using System.Linq;
using TorchSharp;
using TorchSharp.Modules;
using Xunit;
using static TorchSharp.torch;

namespace ModelParallel.Tests
{
    /// <summary>
    /// A replicated parameter drawn from torch's global generator differs between rank threads (they share that
    /// generator), so the replicas would train apart: the optimizer's first step refuses it, naming it; the same model
    /// started from one state trains.
    /// </summary>
    [Trait("Category", "Failure")]
    public sealed class ReplicaCheckTests
    {
        [Fact]
        public void AReplicatedParameterThatDiffersBetweenTpRanksIsRefusedAtTheFirstStep()
        {
            var error = Assert.Throws<RankFailedException>(() => Ranks.Run(new MeshShape(tp: 2), _ =>
            {
                var model = new RandomScale();
                Step(model);
                return 0;
            }));
            var partition = Assert.IsType<PartitionException>(error.InnerException);
            Assert.Contains("parameter #", partition.Message);
            Assert.Contains("of the optimizer [8]", partition.Message);
            Assert.Contains("its values differ between tp ranks", partition.Message);
        }

        [Fact]
        public void TheSameModelStartedFromOneStateTrains()
        {
            torch.manual_seed(5);
            var logical = new RandomScale().state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.detach().clone());
            var losses = Ranks.Run(new MeshShape(tp: 2), _ =>
            {
                var model = new RandomScale();
                LogicalState.Load(model, logical);
                return Step(model);
            });
            Assert.Equal(losses[0], losses[1]);
        }

        private static double Step(RandomScale model)
        {
            var optimizer = torch.optim.Adam(model.parameters(), lr: 0.01);
            using var x = torch.ones(2, 8);
            var loss = model.forward(x).square().mean();
            loss.backward();
            optimizer.step();
            return loss.item<float>();
        }
    }

    /// <summary>A partitioned MLP scaled by a replicated Parameter drawn with torch.randn: not seeded by the generator.</summary>
    [ParallelModule]
    public sealed partial class RandomScale : nn.Module<Tensor, Tensor>
    {
        private readonly Parameter scale;
        [ColumnParallel] private readonly Linear up;
        [RowParallel] private readonly Linear down;

        public RandomScale() : base(nameof(RandomScale))
        {
            scale = new Parameter(torch.randn(8));
            up = nn.Linear(8, 16);
            down = nn.Linear(16, 8);
            RegisterComponents();
        }

        public override Tensor forward(Tensor x) => down.forward(up.forward(x)) * scale;
    }
}
