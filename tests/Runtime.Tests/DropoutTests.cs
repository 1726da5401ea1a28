using System.Linq;
using ModelParallel.Layers;
using ModelParallel.Tests.Models;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace ModelParallel.Tests
{
    /// <summary>Megatron's dropout discipline: one stream shared by the tp ranks for replicated values, one per tp rank for sharded ones.</summary>
    [Trait("Category", "Equivalence")]
    public sealed class DropoutTests
    {
        private const long Width = 8;

        [Fact]
        public void ReplicatedDropoutDrawsTheSameMaskOnEveryTpRankAndAtEveryTpSize()
        {
            torch.manual_seed(5);
            var logical = new DropoutMlp(Width, shardedDropout: false).state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.detach().clone());
            var input = torch.randn(6, Width);
            Tensor[] Outputs(int tp) => Ranks.Run(new MeshShape(tp: tp), context =>
            {
                var model = new DropoutMlp(Width, shardedDropout: false);
                LogicalState.Load(model, logical);
                model.forward(input); // a second call draws a new mask
                return model.forward(input).detach().clone();
            });
            var single = Outputs(1)[0];
            Assert.True(single.eq(0).sum().item<long>() > 0, "some outputs are dropped");
            foreach (var tp in new[] { 2, 4 })
                foreach (var output in Outputs(tp))
                    TensorAssert.Close(single, output, $"tp={tp}: replicated dropout equals tp=1");
        }

        [Fact]
        public void ShardedDropoutDrawsADifferentMaskOnEachTpRankAndReplicatedTheSame()
        {
            var masks = Ranks.Run(new MeshShape(tp: 2), context =>
                (Sharded: ParallelDropout.Dropout("test", true, torch.ones(4096), 0.5, true, false),
                 Replicated: ParallelDropout.Dropout("test", false, torch.ones(4096), 0.5, true, false)));
            Assert.False(masks[0].Sharded.eq(masks[1].Sharded).all().item<bool>(), "sharded slices get independent masks");
            Assert.True(masks[0].Replicated.eq(masks[1].Replicated).all().item<bool>(), "replicas get the same mask");
            double kept = masks[0].Sharded.ne(0).to(float32).mean().item<float>();
            Assert.InRange(kept, 0.45, 0.55);
            Assert.Equal(2.0, masks[0].Sharded.max().item<float>(), 5); // kept values are scaled by 1 / (1 - p)
        }

        [Fact]
        public void ShardedDropoutTrainsAtTp2()
        {
            // No single-device equal exists for sharded dropout (the slices draw independent masks); check it runs and learns.
            var losses = Ranks.Run(new MeshShape(tp: 2), context =>
            {
                torch.manual_seed(8);
                var model = new DropoutMlp(Width, shardedDropout: true);
                var optimizer = torch.optim.Adam(model.parameters(), lr: 0.01);
                var x = torch.ones(16, Width);
                double first = 0, last = 0;
                for (int step = 0; step < 30; step++)
                {
                    optimizer.zero_grad();
                    var loss = nn.functional.mse_loss(model.forward(x), torch.zeros(16, Width));
                    loss.backward();
                    optimizer.step();
                    if (step == 0) first = loss.item<float>();
                    last = loss.item<float>();
                }
                return (first, last);
            });
            Assert.All(losses, l => Assert.True(l.last < l.first, $"loss {l.first} -> {l.last}"));
        }
    }
}
