using System.Collections.Generic;
using ModelParallel.Communication;
using TorchSharp;
using static TorchSharp.torch.autograd;

namespace ModelParallel.Autograd
{
    /// <summary>
    /// All-gather along a dimension forward (S(d) → R) before a layer that leaves each rank a summand of the input's
    /// gradient (a ColumnParallel shard): backward reduce-scatters that gradient, summing the ranks' summands and keeping
    /// this rank's slice. Megatron's gather for the sequence-parallel stream.
    /// </summary>
    internal sealed class GatherFromSequenceParallel : SingleTensorFunction<GatherFromSequenceParallel>
    {
        public override string Name => nameof(GatherFromSequenceParallel);

        public override torch.Tensor forward(AutogradContext ctx, params object[] vars)
        {
            var local = (torch.Tensor)vars[0];
            var communicator = (ICommunicator)vars[1];
            long dim = (long)vars[2] < 0 ? (long)vars[2] + local.dim() : (long)vars[2];
            ctx.save_data("communicator", communicator);
            BackwardGuard.SaveSite(ctx);
            ctx.save_data("dim", dim);
            var contiguous = local.contiguous();
            var gathered = communicator.AllGather(contiguous, dim);
            System.GC.KeepAlive(contiguous);
            return gathered;
        }

        public override List<torch.Tensor> backward(AutogradContext ctx, torch.Tensor gradOutput) =>
            BackwardGuard.Run(ctx, gradOutput, arguments: 3, grad =>
            {
                var contiguous = grad.contiguous();
                var scattered = ((ICommunicator)ctx.get_data("communicator")).ReduceScatter(contiguous, (long)ctx.get_data("dim"));
                System.GC.KeepAlive(contiguous);
                return scattered;
            });
    }
}
