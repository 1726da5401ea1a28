using System;
using System.Collections.Generic;
using System.Linq;
using ModelParallel.DataParallel;
using TorchSharp;
using static TorchSharp.torch;

namespace ModelParallel.Tests.Models
{
    /// <summary>
    /// Training of <see cref="BranchModel"/> (or its reference) where each replica takes or drops the branch as a plan
    /// says, step by step: the one-device reference runs both replicas' halves in one process, a dp rank its own half.
    /// Shared by the thread tests and the MPI scenario.
    /// </summary>
    public static class BranchTraining
    {
        public const int Width = 8, Batch = 8;

        /// <summary>One batch of <see cref="Batch"/> rows per step (seed 12).</summary>
        public static List<(Tensor X, Tensor Y)> Batches(int steps)
        {
            using var generator = new torch.Generator(12);
            return Enumerable.Range(0, steps).Select(_ =>
                (torch.empty(Batch, Width).normal_(0, 1, generator), torch.empty(Batch, Width).normal_(0, 1, generator))).ToList();
        }

        /// <summary>
        /// Adam steps (lr 0.01) of mean-squared error: each step, every replica d in <paramref name="replicas"/> sets the
        /// model to <c>take[step][d]</c> and <c>drop[step][d]</c> and runs its half of the batch, the loss scaled by its
        /// share of the replicas run here; then <paramref name="averaging"/> synchronizes. The gradients that exist after
        /// each step (a parameter nothing reached has none).
        /// </summary>
        public static List<Dictionary<string, Tensor>> Steps(nn.Module<Tensor, Tensor> model, Action<bool, bool> set, bool[][] take, bool[][] drop,
            List<(Tensor X, Tensor Y)> batches, int[] replicas, DataParallelGradients? averaging)
        {
            var optimizer = torch.optim.Adam(model.parameters(), lr: 0.01);
            var recorded = new List<Dictionary<string, Tensor>>();
            for (int step = 0; step < take.Length; step++)
            {
                optimizer.zero_grad();
                foreach (int d in replicas)
                {
                    set(take[step][d], drop[step][d]);
                    var x = batches[step].X.narrow(0, d * Batch / 2, Batch / 2);
                    var y = batches[step].Y.narrow(0, d * Batch / 2, Batch / 2);
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
