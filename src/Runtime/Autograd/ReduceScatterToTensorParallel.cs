using System.Collections.Generic;
using ModelParallel.Communication;
using TorchSharp;
using static TorchSharp.torch.autograd;

namespace ModelParallel.Autograd
{
    /// <summary>Reduce-scatter along a dimension forward (P → S(d)); backward all-gathers the gradient (S(d) → R).</summary>
    internal sealed class ReduceScatterToTensorParallel : SingleTensorFunction<ReduceScatterToTensorParallel>
    {
        public override string Name => nameof(ReduceScatterToTensorParallel);

        public override torch.Tensor forward(AutogradContext ctx, params object[] vars)
        {
            var partial = (torch.Tensor)vars[0];
            var communicator = (ICommunicator)vars[1];
            long dim = (long)vars[2] < 0 ? (long)vars[2] + partial.dim() : (long)vars[2];
            ctx.save_data("communicator", communicator);
            BackwardGuard.SaveSite(ctx);
            ctx.save_data("dim", dim);
            return communicator.ReduceScatter(partial.contiguous(), dim);
        }

        public override List<torch.Tensor> backward(AutogradContext ctx, torch.Tensor gradOutput) =>
            BackwardGuard.Run(ctx, gradOutput, arguments: 3, grad =>
                ((ICommunicator)ctx.get_data("communicator")).AllGather(grad.contiguous(), (long)ctx.get_data("dim")));
    }
}
