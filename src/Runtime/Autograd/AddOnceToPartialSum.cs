using System.Collections.Generic;
using TorchSharp;
using static TorchSharp.torch.autograd;

namespace ModelParallel.Autograd
{
    /// <summary>
    /// A replicated term (a bias) added to a partial sum so the sum over ranks holds it once: forward, the term on
    /// tp rank 0 and zeros elsewhere; backward, the whole gradient on every rank, so the replicas of the term get
    /// the same gradient and stay identical (the gradient of the reduced sum with respect to it).
    /// </summary>
    internal sealed class AddOnceToPartialSum : SingleTensorFunction<AddOnceToPartialSum>
    {
        public override string Name => nameof(AddOnceToPartialSum);

        public override torch.Tensor forward(AutogradContext ctx, params object[] vars)
        {
            var term = (torch.Tensor)vars[0];
            return (bool)vars[1] ? term.alias() : torch.zeros_like(term);
        }

        public override List<torch.Tensor> backward(AutogradContext ctx, torch.Tensor gradOutput) =>
            new() { gradOutput, null! };
    }
}
