using System.Collections.Generic;
using ModelParallel.DataParallel;
using TorchSharp;
using static TorchSharp.torch.autograd;

namespace ModelParallel.Autograd
{
    /// <summary>
    /// Identity on a parameter whose backward hands the parameter's gradient to the data-parallel
    /// synchronizer the moment it is computed. TorchSharp 0.107 has no tensor gradient hooks; this is one.
    /// A gradient the synchronizer takes goes no further (none reaches .grad); one it refuses (its bucket
    /// already started) goes on to .grad, where Synchronize finds it.
    /// </summary>
    internal sealed class GradientTap : SingleTensorFunction<GradientTap>
    {
        public override string Name => nameof(GradientTap);

        public override torch.Tensor forward(AutogradContext ctx, params object[] vars)
        {
            ctx.save_data("gradients", vars[1]);
            ctx.save_data("index", vars[2]);
            return ((torch.Tensor)vars[0]).alias();
        }

        public override List<torch.Tensor> backward(AutogradContext ctx, torch.Tensor gradOutput) =>
            BackwardGuard.Run(gradOutput, arguments: 3, grad =>
            {
                bool taken = ((DataParallelGradients)ctx.get_data("gradients")).Arrive((int)ctx.get_data("index"), grad);
                return taken ? null! : grad;
            });
    }
}
