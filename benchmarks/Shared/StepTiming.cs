using System;
using System.Diagnostics;
using ModelParallel.DataParallel;
using ModelParallel.Communication;
using TorchSharp;
using static TorchSharp.torch;

namespace ModelParallel.Benchmarks
{
    /// <summary>How the step-time benchmarks time one rank's training step, so that every benchmark times it alike.</summary>
    internal static class StepTiming
    {
        /// <summary>
        /// The least time a benchmark warms up for before it times. .NET's tiered JIT recompiles the hot code on a background
        /// thread during about the first two seconds of a run; on threads with a core per rank, that thread takes one rank's
        /// core while the other rank waits for it at the next collective. The MLP stack at tp = 2 on threads stepped in
        /// 56 ms during its first 20 steps and in 38 ms from its 40th on (with the JIT's tiers off: 49 ms in its first 10,
        /// 38 after). PyTorch's side (benchmarks/Peers/peers.py) warms up by the same rule.
        /// </summary>
        public static readonly TimeSpan Warmup = TimeSpan.FromSeconds(3);

        /// <summary>
        /// Milliseconds per step on this rank: at least <paramref name="warmup"/> steps and <see cref="Warmup"/> first, then
        /// the mean of <paramref name="steps"/> between world barriers, so every rank times the same steps. The ranks agree
        /// on the end of the warm-up by one all-reduce a step (the longest any rank wants), so they run the same steps.
        /// <paramref name="timing"/> runs once, after the warm-up, before the first timed step.
        /// </summary>
        public static double Milliseconds(int warmup, int steps, Action step, Action? timing = null)
        {
            var world = RankContext.Current!.World;
            var warming = Stopwatch.StartNew();
            using (var more = torch.zeros(1))
            {
                for (int i = 0; ; i++)
                {
                    if (i >= warmup)
                    {
                        more.fill_(warming.Elapsed < Warmup ? 1 : 0);
                        world.AllReduce(more, ReduceOp.Max);
                        if (more.item<float>() == 0) break;
                    }
                    step();
                }
            }
            timing?.Invoke();
            world.Barrier();
            var clock = Stopwatch.StartNew();
            for (int i = 0; i < steps; i++) step();
            world.Barrier();
            return clock.Elapsed.TotalMilliseconds / steps;
        }

        /// <summary>
        /// A model trained on a fixed normal input of shape <paramref name="input"/> (seed 3; each dp rank its rows,
        /// its gradients averaged over dp) with Adam (lr 1e-4) on mean(y²): milliseconds per step after the warm-up of
        /// <see cref="Milliseconds"/> (at least 3 steps).
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
            // STEP_PHASES=1: each rank also prints the mean time of each phase over the timed steps (the step stays the same).
            var phases = Environment.GetEnvironmentVariable("STEP_PHASES") == "1" ? new double[4] : null;
            var clock = new Stopwatch();
            void Phase(int index)
            {
                if (phases is null) return;
                phases[index] += clock.Elapsed.TotalMilliseconds;
                clock.Restart();
            }
            int collections = 0;
            var paused = TimeSpan.Zero;
            double ms = Milliseconds(3, steps, () =>
            {
                using var scope = torch.NewDisposeScope();
                clock.Restart();
                optimizer.zero_grad();
                var loss = model.forward(x).square().mean();
                Phase(0);
                loss.backward();
                Phase(1);
                averaging?.Synchronize();
                Phase(2);
                optimizer.step();
                Phase(3);
            }, timing: () =>
            {
                if (phases is null) return;
                Array.Clear(phases); // the timed steps only
                collections = GC.CollectionCount(0);
                paused = GC.GetTotalPauseDuration();
            });
            if (phases is not null)
                Console.WriteLine(FormattableString.Invariant(
                    $"PHASES rank {context.Rank}: forward {phases[0] / steps:F1} backward {phases[1] / steps:F1} synchronize {phases[2] / steps:F1} step {phases[3] / steps:F1} ms; process GC {(GC.CollectionCount(0) - collections) / (double)steps:F2} collections {(GC.GetTotalPauseDuration() - paused).TotalMilliseconds / steps:F2} ms paused per step"));
            return ms;
        }
    }
}
