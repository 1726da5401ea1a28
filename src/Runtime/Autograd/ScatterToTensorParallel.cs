using System.Collections.Generic;
using ModelParallel.Communication;
using TorchSharp;
using static TorchSharp.torch.autograd;

namespace ModelParallel.Autograd
{
    /// <summary>Keeps this rank's slice along a dimension forward (R → S(d), free); all-gathers the gradient backward.</summary>
    internal sealed class ScatterToTensorParallel : SingleTensorFunction<ScatterToTensorParallel>
    {
        public override string Name => nameof(ScatterToTensorParallel);

        public override torch.Tensor forward(AutogradContext ctx, params object[] vars)
        {
            var full = (torch.Tensor)vars[0];
            var communicator = (ICommunicator)vars[1];
            long dim = (long)vars[2] < 0 ? (long)vars[2] + full.dim() : (long)vars[2];
            ctx.save_data("communicator", communicator);
            BackwardGuard.SaveSite(ctx);
            ctx.save_data("dim", dim);
            long part = full.shape[dim] / communicator.Size;
            return full.narrow(dim, communicator.Rank * part, part).contiguous();
        }

        public override List<torch.Tensor> backward(AutogradContext ctx, torch.Tensor gradOutput) =>
            BackwardGuard.Run(ctx, gradOutput, arguments: 3, grad =>
            {
                var communicator = (ICommunicator)ctx.get_data("communicator");
                return communicator.AllGather(grad.contiguous(), (long)ctx.get_data("dim"));
            });
    }
}
