using System.Collections.Generic;
using ModelParallel.Communication;
using TorchSharp;
using static TorchSharp.torch.autograd;

namespace ModelParallel.Autograd
{
    /// <summary>Megatron's f: identity forward, all-reduce of the gradient backward. Placement R stays R.</summary>
    internal sealed class CopyToTensorParallel : SingleTensorFunction<CopyToTensorParallel>
    {
        public override string Name => nameof(CopyToTensorParallel);

        public override torch.Tensor forward(AutogradContext ctx, params object[] vars)
        {
            ctx.save_data("communicator", vars[1]);
            BackwardGuard.SaveSite(ctx);
            return ((torch.Tensor)vars[0]).alias();
        }

        public override List<torch.Tensor> backward(AutogradContext ctx, torch.Tensor gradOutput) =>
            BackwardGuard.Run(ctx, gradOutput, arguments: 2, grad =>
            {
                var gradient = grad.clone();
                ((ICommunicator)ctx.get_data("communicator")).AllReduce(gradient);
                return gradient;
            });
    }
}
