using System;
using System.Diagnostics;
using ModelParallel.DataParallel;
using TorchSharp;
using static TorchSharp.torch;

namespace ModelParallel.Benchmarks
{
    /// <summary>How the step-time benchmarks time one rank's training step, so that every benchmark times it alike.</summary>
    internal static class StepTiming
    {
        /// <summary>
        /// Milliseconds per step on this rank: <paramref name="warmup"/> steps first, then the mean of
        /// <paramref name="steps"/> between world barriers, so every rank times the same steps.
        /// </summary>
        public static double Milliseconds(int warmup, int steps, Action step)
        {
            var world = RankContext.Current!.World;
            for (int i = 0; i < warmup; i++) step();
            world.Barrier();
            var clock = Stopwatch.StartNew();
            for (int i = 0; i < steps; i++) step();
            world.Barrier();
            return clock.Elapsed.TotalMilliseconds / steps;
        }

        /// <summary>
        /// A model trained on a fixed normal input of shape <paramref name="input"/> (seed 3; each dp rank its rows,
        /// its gradients averaged over dp) with Adam (lr 1e-4) on mean(y²): milliseconds per step after 3 warm-up steps.
        /// </summary>
        public static double Stack(nn.Module<Tensor, Tensor> model, long[] input, int steps)
        {
            var context = RankContext.Current!;
            var averaging = context.Mesh.Dp > 1 ? DataParallelGradients.Attach(model) : null;
            var optimizer = new InPlaceAdam(model.parameters(), lr: 1e-4);
            using var generator = new torch.Generator(3);
            using var whole = torch.empty(input).normal_(0, 1, generator);
            long rows = input[0] / context.Mesh.Dp;
            using var x = whole.narrow(0, context.Coordinates.Dp * rows, rows).contiguous();
            return Milliseconds(3, steps, () =>
            {
                using var scope = torch.NewDisposeScope();
                optimizer.zero_grad();
                model.forward(x).square().mean().backward();
                averaging?.Synchronize();
                optimizer.step();
            });
        }
    }
}
