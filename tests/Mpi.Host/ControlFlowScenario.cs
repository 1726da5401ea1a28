using System;
using System.Linq;
using ModelParallel.DataParallel;
using ModelParallel.Tests.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace ModelParallel.Tests
{
    /// <summary>
    /// Replicas whose forwards differ, as processes: a branch one replica takes and the other does not, a layer one runs
    /// and drops. Their buckets complete in different orders, and their all-reduces must still be issued in one order
    /// (before buckets were ordered, the agreement check stopped this job with a collective mismatch). Every step's averaged gradients must equal one device on the whole batch.
    /// </summary>
    internal static class ControlFlowScenario
    {
        // Per step, per replica: whether it takes the branch, and whether it drops the branch's output.
        private static readonly bool[][] Take = { new[] { true, false }, new[] { true, true }, new[] { false, true } };
        private static readonly bool[][] Drop = { new[] { false, false }, new[] { false, true }, new[] { false, false } };

        public static void Run()
        {
            var batches = BranchTraining.Batches(Take.Length);
            torch.manual_seed(11);
            var reference = new ReferenceBranchModel(BranchTraining.Width);
            var logical = reference.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.detach().clone());
            var expected = BranchTraining.Steps(reference, (t, d) => (reference.TakeBranch, reference.DropBranch) = (t, d), Take, Drop, batches, new[] { 0, 1 }, null);

            Ranks.Run(new MeshShape(dp: 2), context =>
            {
                var model = new BranchModel(BranchTraining.Width);
                LogicalState.Load(model, logical);
                var averaging = DataParallelGradients.Attach(model, bucketElements: 100);
                var actual = BranchTraining.Steps(model, (t, d) => (model.TakeBranch, model.DropBranch) = (t, d), Take, Drop, batches, new[] { context.Coordinates.Dp }, averaging);
                for (int step = 0; step < Take.Length; step++)
                {
                    MpiScenarios.Check(expected[step].Keys.OrderBy(k => k).SequenceEqual(actual[step].Keys.OrderBy(k => k)),
                        $"rank {context.Rank} step {step + 1}: gradients of {string.Join(", ", actual[step].Keys)}, expected {string.Join(", ", expected[step].Keys)}");
                    foreach (var (name, g) in expected[step]) MpiScenarios.Close(g, actual[step][name], $"rank {context.Rank} step {step + 1}: gradient of {name}");
                }
                context.World.Barrier();
                if (context.Rank == 0) Console.WriteLine("replicas with different forwards ok on dp=2");
            });
        }
    }
}
