using System.Collections.Generic;
using ModelParallel.Communication;
using TorchSharp;
using static TorchSharp.torch.autograd;

namespace ModelParallel.Autograd
{
    /// <summary>Megatron's g: all-reduce forward (P → R), identity backward.</summary>
    internal sealed class ReduceFromTensorParallel : SingleTensorFunction<ReduceFromTensorParallel>
    {
        public override string Name => nameof(ReduceFromTensorParallel);

        public override torch.Tensor forward(AutogradContext ctx, params object[] vars)
        {
            var sum = ((torch.Tensor)vars[0]).clone();
            ((ICommunicator)vars[1]).AllReduce(sum);
            return sum;
        }

        public override List<torch.Tensor> backward(AutogradContext ctx, torch.Tensor gradOutput) =>
            BackwardGuard.Run(gradOutput, arguments: 2, grad => grad);
    }
}
