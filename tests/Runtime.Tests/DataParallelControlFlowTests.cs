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
            var batches = BranchTraining.Batches(take.Length);
            torch.manual_seed(11);
            var reference = new ReferenceBranchModel(BranchTraining.Width);
            var logical = reference.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.detach().clone());
            var expected = BranchTraining.Steps(reference, (t, d) => (reference.TakeBranch, reference.DropBranch) = (t, d), take, drop, batches, new[] { 0, 1 }, null);

            var results = Ranks.Run(new MeshShape(dp: 2), context =>
            {
                var model = new BranchModel(BranchTraining.Width);
                LogicalState.Load(model, logical);
                var averaging = DataParallelGradients.Attach(model, bucketElements);
                return BranchTraining.Steps(model, (t, d) => (model.TakeBranch, model.DropBranch) = (t, d), take, drop, batches, new[] { context.Coordinates.Dp }, averaging);
            }, new RunOptions { CollectiveTimeout = System.TimeSpan.FromSeconds(20) });

            foreach (var (result, rank) in results.Select((r, i) => (r, i)))
                for (int step = 0; step < take.Length; step++)
                {
                    Assert.Equal(expected[step].Keys.OrderBy(k => k), result[step].Keys.OrderBy(k => k));
                    TensorAssert.AllClose(expected[step], result[step], $"{plan}: rank {rank} step {step + 1}: gradient of");
                }
        }

        private static bool[][] None(int steps) => Enumerable.Range(0, steps).Select(_ => new[] { false, false }).ToArray();

        private static bool[][] Every(int steps) => Enumerable.Range(0, steps).Select(_ => new[] { true, true }).ToArray();
    }
}
