using System;
using System.Collections.Generic;
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
        private const int Width = 8, Batch = 8;

        // Per step, per replica: whether it takes the branch, and whether it drops the branch's output.
        private static readonly bool[][] Take = { new[] { true, false }, new[] { true, true }, new[] { false, true } };
        private static readonly bool[][] Drop = { new[] { false, false }, new[] { false, true }, new[] { false, false } };

        public static void Run()
        {
            using var generator = new torch.Generator(12);
            var batches = Enumerable.Range(0, Take.Length).Select(_ => (torch.empty(Batch, Width).normal_(0, 1, generator), torch.empty(Batch, Width).normal_(0, 1, generator))).ToList();
            torch.manual_seed(11);
            var reference = new ReferenceBranchModel(Width);
            var logical = reference.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.detach().clone());
            var expected = Steps(reference, batches, (d, step) => (reference.TakeBranch, reference.DropBranch) = (Take[step][d], Drop[step][d]), replicas: new[] { 0, 1 }, null);

            Ranks.Run(new MeshShape(dp: 2), context =>
            {
                int d = context.Coordinates.Dp;
                var model = new BranchModel(Width);
                LogicalState.Load(model, logical);
                var averaging = DataParallelGradients.Attach(model, bucketElements: 100);
                var actual = Steps(model, batches, (_, step) => (model.TakeBranch, model.DropBranch) = (Take[step][d], Drop[step][d]), replicas: new[] { d }, averaging);
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

        /// <summary>
        /// Adam steps of mean-squared error: each step, every replica in <paramref name="replicas"/> runs its half of the
        /// batch (the loss scaled by its share where one process runs both); the gradients that exist after each step.
        /// </summary>
        private static List<Dictionary<string, Tensor>> Steps(nn.Module<Tensor, Tensor> model, List<(Tensor X, Tensor Y)> batches,
            Action<int, int> configure, int[] replicas, DataParallelGradients? averaging)
        {
            var optimizer = torch.optim.Adam(model.parameters(), lr: 0.01);
            var recorded = new List<Dictionary<string, Tensor>>();
            for (int step = 0; step < batches.Count; step++)
            {
                optimizer.zero_grad();
                foreach (int d in replicas)
                {
                    configure(d, step);
                    var x = batches[step].Item1.narrow(0, d * Batch / 2, Batch / 2);
                    var y = batches[step].Item2.narrow(0, d * Batch / 2, Batch / 2);
#pragma warning disable MP0021 // whole-output models only (BranchModel and its reference)
                    (nn.functional.mse_loss(model.forward(x), y) / replicas.Length).backward();
#pragma warning restore MP0021
                }
                averaging?.Synchronize();
                recorded.Add(model.named_parameters().Where(p => p.parameter.grad is not null).ToDictionary(p => p.name, p => p.parameter.grad!.clone()));
                optimizer.step();
            }
            return recorded;
        }
    }
}
