using System.Collections.Generic;
using ModelParallel.Communication;
using TorchSharp;
using static TorchSharp.torch.autograd;

namespace ModelParallel.Autograd
{
    /// <summary>All-gather along a dimension forward (S(d) → R); backward keeps this rank's slice of the gradient.</summary>
    internal sealed class GatherFromTensorParallel : SingleTensorFunction<GatherFromTensorParallel>
    {
        public override string Name => nameof(GatherFromTensorParallel);

        public override torch.Tensor forward(AutogradContext ctx, params object[] vars)
        {
            var local = (torch.Tensor)vars[0];
            var communicator = (ICommunicator)vars[1];
            long dim = (long)vars[2] < 0 ? (long)vars[2] + local.dim() : (long)vars[2];
            ctx.save_data("communicator", communicator);
            BackwardGuard.SaveSite(ctx);
            ctx.save_data("dim", dim);
            ctx.save_data("size", local.shape[dim]);
            return communicator.AllGather(local.contiguous(), dim);
        }

        public override List<torch.Tensor> backward(AutogradContext ctx, torch.Tensor gradOutput) =>
            BackwardGuard.Run(ctx, gradOutput, arguments: 3, grad =>
            {
                var communicator = (ICommunicator)ctx.get_data("communicator");
                long dim = (long)ctx.get_data("dim"), size = (long)ctx.get_data("size");
                return grad.narrow(dim, communicator.Rank * size, size).contiguous();
            });
    }
}
