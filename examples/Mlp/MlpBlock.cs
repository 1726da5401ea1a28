using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace ModelParallel.Examples.Mlp
{
    /// <summary>A pre-norm residual MLP block, partitioned Megatron-style by its attributes alone.</summary>
    [ParallelModule]
    public sealed partial class MlpBlock : nn.Module<Tensor, Tensor>
    {
        private readonly LayerNorm norm;
        [ColumnParallel] private readonly Linear up;
        [RowParallel] private readonly Linear down;

        public MlpBlock(long width, long hidden) : base(nameof(MlpBlock))
        {
            norm = nn.LayerNorm(width);
            up = nn.Linear(width, hidden);
            down = nn.Linear(hidden, width);
            RegisterComponents();
        }

        public override Tensor forward(Tensor x) =>
            x + down.forward(nn.functional.gelu(up.forward(norm.forward(x))));
    }
}
