using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace ModelParallel.Benchmarks
{
    /// <summary>The MLP block partitioned by attributes (generated communication).</summary>
    [ParallelModule]
    public sealed partial class GeneratedBlock : nn.Module<Tensor, Tensor>
    {
        private readonly LayerNorm norm;
        [ColumnParallel] private readonly Linear up;
        [RowParallel] private readonly Linear down;

        public GeneratedBlock(long width, long hidden) : base(nameof(GeneratedBlock))
        {
            norm = nn.LayerNorm(width);
            up = nn.Linear(width, hidden);
            down = nn.Linear(hidden, width);
            RegisterComponents();
        }

        public override Tensor forward(Tensor x) => x + down.forward(nn.functional.gelu(up.forward(norm.forward(x))));
    }
}
