using System.Collections.Generic;
using System.Threading;
using TorchSharp;
using static TorchSharp.torch.autograd;

namespace ModelParallel.Benchmarks
{
    /// <summary>
    /// Identity that sleeps a fixed time in forward and twice that in backward: a stage of known, equal cost
    /// that does not compete for this 2-core machine's CPUs, so the measured bubble is the schedule's.
    /// </summary>
    internal sealed class Delay : SingleTensorFunction<Delay>
    {
        public override string Name => nameof(Delay);

        public override torch.Tensor forward(AutogradContext ctx, params object[] vars)
        {
            int ms = (int)vars[1];
            ctx.save_data("ms", ms);
            Thread.Sleep(ms);
            return ((torch.Tensor)vars[0]).alias();
        }

        public override List<torch.Tensor> backward(AutogradContext ctx, torch.Tensor gradOutput)
        {
            Thread.Sleep(2 * (int)ctx.get_data("ms"));
            return new List<torch.Tensor> { gradOutput, null! };
        }
    }
}
