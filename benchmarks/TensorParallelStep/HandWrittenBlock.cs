using ModelParallel.Autograd;
using ModelParallel.Communication;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace ModelParallel.Benchmarks
{
    /// <summary>
    /// The same block partitioned by hand, Megatron-style, with explicit collectives: the baseline. The row-parallel layer
    /// keeps its bias and adds it after the all-reduce, as Megatron's RowParallelLinear does, so the parameters come out of
    /// <c>parameters()</c> in the generated block's order (Adam's step over the same tensors took 1.5–2 ms longer in
    /// one order than in the other, which a separate bias <c>Parameter</c>, listed before the layers, changed).
    /// </summary>
    public sealed class HandWrittenBlock : nn.Module<Tensor, Tensor>
    {
        private readonly LayerNorm norm;
        private readonly Linear up;
        private readonly Linear down;
        private readonly ICommunicator tp;

        public HandWrittenBlock(long width, long hidden, ICommunicator tp) : base(nameof(HandWrittenBlock))
        {
            this.tp = tp;
            norm = nn.LayerNorm(width);
            up = nn.Linear(width, hidden / tp.Size);
            down = nn.Linear(hidden / tp.Size, width);
            RegisterComponents();
        }

        public override Tensor forward(Tensor x)
        {
            var h = nn.functional.gelu(up.forward(TensorParallel.CopyToTensorParallel(norm.forward(x), tp)));
            return x + TensorParallel.ReduceFromTensorParallel(nn.functional.linear(h, down.weight!), tp) + down.bias!;
        }
    }
}
