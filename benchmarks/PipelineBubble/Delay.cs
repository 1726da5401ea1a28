using System.Collections.Generic;
using System.Threading;
using TorchSharp;
using static TorchSharp.torch.autograd;

namespace ModelParallel.Benchmarks
{
    /// <summary>
    /// Identity that waits a fixed time in forward and twice that in backward: a stage of known, equal cost
    /// that hardly competes for this 2-core machine's CPUs (it sleeps, then spins only the last 1.5 ms to hit
    /// the deadline precisely: plain sleeps overshoot by a varying fraction of a millisecond, and that jitter
    /// alone adds waits to a tightly coupled pipeline).
    /// </summary>
    internal sealed class Delay : SingleTensorFunction<Delay>
    {
        public override string Name => nameof(Delay);

        public override torch.Tensor forward(AutogradContext ctx, params object[] vars)
        {
            int ms = (int)vars[1];
            ctx.save_data("ms", ms);
            Wait(ms);
            return ((torch.Tensor)vars[0]).alias();
        }

        private static void Wait(double ms)
        {
            var clock = System.Diagnostics.Stopwatch.StartNew();
            if (ms > 2) Thread.Sleep(System.TimeSpan.FromMilliseconds(ms - 1.5));
            while (clock.Elapsed.TotalMilliseconds < ms) Thread.SpinWait(20);
        }

        public override List<torch.Tensor> backward(AutogradContext ctx, torch.Tensor gradOutput)
        {
            Wait(2 * (int)ctx.get_data("ms"));
            return new List<torch.Tensor> { gradOutput, null! };
        }
    }
}
