using ModelParallel.Autograd;
using ModelParallel.Communication;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace ModelParallel.Benchmarks
{
    /// <summary>The same block partitioned by hand, Megatron-style, with explicit collectives: the baseline.</summary>
    public sealed class HandWrittenBlock : nn.Module<Tensor, Tensor>
    {
        private readonly LayerNorm norm;
        private readonly Linear up;
        private readonly Linear down;
        private readonly Parameter downBias;
        private readonly ICommunicator tp;

        public HandWrittenBlock(long width, long hidden, ICommunicator tp) : base(nameof(HandWrittenBlock))
        {
            this.tp = tp;
            norm = nn.LayerNorm(width);
            up = nn.Linear(width, hidden / tp.Size);
            down = nn.Linear(hidden / tp.Size, width, hasBias: false);
            downBias = new Parameter(torch.zeros(width));
            RegisterComponents();
        }

        public override Tensor forward(Tensor x)
        {
            var h = nn.functional.gelu(up.forward(TensorParallel.CopyToTensorParallel(norm.forward(x), tp)));
            return x + TensorParallel.ReduceFromTensorParallel(down.forward(h), tp) + downBias;
        }
    }
}
