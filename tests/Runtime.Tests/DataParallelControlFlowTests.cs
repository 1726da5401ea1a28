using System.Collections.Generic;
using System.Linq;
using ModelParallel.DataParallel;
using ModelParallel.Tests.Models;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace ModelParallel.Tests
{
    /// <summary>
    /// Replicas whose forwards differ (a branch one replica takes and the other does not, a layer one replica runs and then
    /// drops) complete their buckets at different times: their all-reduces must still meet in one order, and every step's
    /// averaged gradients equal one device on the whole batch, each half through its replica's forward.
    /// </summary>
    [Trait("Category", "Equivalence")]
    public sealed class DataParallelControlFlowTests
    {
        private const int Width = 8, Batch = 8;

        // Per step, per replica: whether it takes the branch, and whether it then drops the branch's output.
        public static TheoryData<string, bool[][], bool[][], long> Plans => new()
        {
            { "a branch taken by one replica", new[] { new[] { true, false }, new[] { true, true }, new[] { false, true } }, None(3), 100 },
            { "a branch taken by one replica, one bucket", new[] { new[] { true, false }, new[] { false, true } }, None(2), DataParallelGradients.DefaultBucketElements },
            { "a layer one replica runs and drops", Every(3), new[] { new[] { false, false }, new[] { false, true }, new[] { true, false } }, 100 },
        };

        [Theory]
        [MemberData(nameof(Plans))]
        public void ReplicasThatRunDifferentLayersMatchOneDevice(string plan, bool[][] take, bool[][] drop, long bucketElements)
        {
            int steps = take.Length;
            var batches = Batches(steps);
            torch.manual_seed(11);
            var reference = new ReferenceBranchModel(Width);
            var logical = reference.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.detach().clone());
            var optimizer = torch.optim.Adam(reference.parameters(), lr: 0.01);
            var expected = new List<Dictionary<string, Tensor>>();
            for (int step = 0; step < steps; step++)
            {
                optimizer.zero_grad();
                for (int d = 0; d < 2; d++)
                {
                    (reference.TakeBranch, reference.DropBranch) = (take[step][d], drop[step][d]);
                    var (x, y) = Half(batches[step], d);
#pragma warning disable MP0021 // whole-output models only
                    (nn.functional.mse_loss(reference.forward(x), y) / 2).backward();
#pragma warning restore MP0021
                }
                expected.Add(Gradients(reference));
                optimizer.step();
            }

            var results = Ranks.Run(new MeshShape(dp: 2), context =>
            {
                var model = new BranchModel(Width);
                LogicalState.Load(model, logical);
                var averaging = DataParallelGradients.Attach(model, bucketElements);
                var adam = torch.optim.Adam(model.parameters(), lr: 0.01);
                int d = context.Coordinates.Dp;
                var recorded = new List<Dictionary<string, Tensor>>();
                for (int step = 0; step < steps; step++)
                {
                    (model.TakeBranch, model.DropBranch) = (take[step][d], drop[step][d]);
                    adam.zero_grad();
                    var (x, y) = Half(batches[step], d);
#pragma warning disable MP0021 // whole-output models only
                    nn.functional.mse_loss(model.forward(x), y).backward();
#pragma warning restore MP0021
                    averaging.Synchronize();
                    recorded.Add(Gradients(model));
                    adam.step();
                }
                return recorded;
            }, new RunOptions { CollectiveTimeout = System.TimeSpan.FromSeconds(20) });

            foreach (var (result, rank) in results.Select((r, i) => (r, i)))
                for (int step = 0; step < steps; step++)
                {
                    Assert.Equal(expected[step].Keys.OrderBy(k => k), result[step].Keys.OrderBy(k => k));
                    TensorAssert.AllClose(expected[step], result[step], $"{plan}: rank {rank} step {step + 1}: gradient of");
                }
        }

        /// <summary>The gradients that exist (a parameter no replica reached has none).</summary>
        private static Dictionary<string, Tensor> Gradients(nn.Module model) =>
            model.named_parameters().Where(p => p.parameter.grad is not null).ToDictionary(p => p.name, p => p.parameter.grad!.clone());

        private static (Tensor X, Tensor Y) Half((Tensor X, Tensor Y) batch, int d) =>
            (batch.X.narrow(0, d * Batch / 2, Batch / 2), batch.Y.narrow(0, d * Batch / 2, Batch / 2));

        private static List<(Tensor X, Tensor Y)> Batches(int steps)
        {
            using var generator = new torch.Generator(12);
            return Enumerable.Range(0, steps).Select(_ =>
                (torch.empty(Batch, Width).normal_(0, 1, generator), torch.empty(Batch, Width).normal_(0, 1, generator))).ToList();
        }

        private static bool[][] None(int steps) => Enumerable.Range(0, steps).Select(_ => new[] { false, false }).ToArray();

        private static bool[][] Every(int steps) => Enumerable.Range(0, steps).Select(_ => new[] { true, true }).ToArray();
    }
}
