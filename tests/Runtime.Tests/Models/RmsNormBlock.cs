using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace ModelParallel.Tests.Models
{
    /// <summary>
    /// RMSNorm written out (TorchSharp 0.107 has no nn.RMSNorm), as LLaMA-style models do, before a partitioned MLP: the
    /// norm's weight is a plain Parameter, replicated; the walk sees a mean over the last dimension of a whole value.
    /// </summary>
    [ParallelModule]
    public sealed partial class RmsNormBlock : nn.Module<Tensor, Tensor>
    {
        private readonly Parameter scale;
        [ColumnParallel] private readonly Linear up;
        [RowParallel] private readonly Linear down;

        public RmsNormBlock(long width, long hidden) : base(nameof(RmsNormBlock))
        {
            scale = new Parameter(torch.ones(width));
            up = nn.Linear(width, hidden, hasBias: false);
            down = nn.Linear(hidden, width, hasBias: false);
            RegisterComponents();
        }

        public override Tensor forward(Tensor x)
        {
            var normed = x * torch.rsqrt(x.pow(2).mean(new long[] { -1 }, keepdim: true) + 1e-6) * scale;
            return x + down.forward(nn.functional.silu(up.forward(normed)));
        }
    }

    /// <summary>The plain form of <see cref="RmsNormBlock"/>, with the same parameter names.</summary>
    public sealed class PlainRmsNormBlock : nn.Module<Tensor, Tensor>
    {
        private readonly Parameter scale;
        private readonly Linear up;
        private readonly Linear down;

        public PlainRmsNormBlock(long width, long hidden) : base(nameof(PlainRmsNormBlock))
        {
            scale = new Parameter(torch.ones(width));
            up = nn.Linear(width, hidden, hasBias: false);
            down = nn.Linear(hidden, width, hasBias: false);
            RegisterComponents();
        }

        public override Tensor forward(Tensor x)
        {
            var normed = x * torch.rsqrt(x.pow(2).mean(new long[] { -1 }, keepdim: true) + 1e-6) * scale;
            return x + down.forward(nn.functional.silu(up.forward(normed)));
        }
    }
}
