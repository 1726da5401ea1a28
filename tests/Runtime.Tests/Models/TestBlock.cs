using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace ModelParallel.Tests.Models
{
    /// <summary>A pre-norm residual MLP block partitioned by attributes.</summary>
    [ParallelModule]
    public sealed partial class TestBlock : nn.Module<Tensor, Tensor>
    {
        private readonly LayerNorm norm;
        [ColumnParallel] private readonly Linear up;
        [RowParallel] private readonly Linear down;

        public TestBlock(long width, long hidden, bool bias) : base(nameof(TestBlock))
        {
            norm = nn.LayerNorm(width);
            up = nn.Linear(width, hidden, hasBias: bias);
            down = nn.Linear(hidden, width, hasBias: bias);
            RegisterComponents();
        }

        public override Tensor forward(Tensor x) => x + down.forward(nn.functional.gelu(up.forward(norm.forward(x))));
    }
}
