using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace ModelParallel.Tests.Models
{
    /// <summary>A sub-module whose forward returns a sharded value: a ColumnParallel layer and GELU, S(-1) out.</summary>
    [ParallelModule]
    public sealed partial class ColumnHalf : nn.Module<Tensor, Tensor>
    {
        [ColumnParallel] private readonly Linear up;

        public ColumnHalf(long width) : base(nameof(ColumnHalf))
        {
            up = nn.Linear(width, 4 * width);
            RegisterComponents();
        }

        public override Tensor forward(Tensor x) => nn.functional.gelu(up.forward(x));
    }

    /// <summary>The parent: the sub-module's S(-1) output feeds a RowParallel layer directly (no slice, no gather).</summary>
    [ParallelModule]
    public sealed partial class SplitAcrossModules : nn.Module<Tensor, Tensor>
    {
        private readonly ColumnHalf half;
        [RowParallel] private readonly Linear down;

        public SplitAcrossModules(long width) : base(nameof(SplitAcrossModules))
        {
            half = new ColumnHalf(width);
            down = nn.Linear(4 * width, width);
            RegisterComponents();
        }

        public override Tensor forward(Tensor x) => x + down.forward(half.forward(x));
    }

    /// <summary>The plain form of <see cref="SplitAcrossModules"/>, with the same parameter names.</summary>
    public sealed class PlainSplitAcrossModules : nn.Module<Tensor, Tensor>
    {
        private readonly PlainHalf half;
        private readonly Linear down;

        public PlainSplitAcrossModules(long width) : base(nameof(PlainSplitAcrossModules))
        {
            half = new PlainHalf(width);
            down = nn.Linear(4 * width, width);
            RegisterComponents();
        }

        public override Tensor forward(Tensor x) => x + down.forward(half.forward(x));

        private sealed class PlainHalf : nn.Module<Tensor, Tensor>
        {
            private readonly Linear up;

            public PlainHalf(long width) : base(nameof(ColumnHalf))
            {
                up = nn.Linear(width, 4 * width);
                RegisterComponents();
            }

            public override Tensor forward(Tensor x) => nn.functional.gelu(up.forward(x));
        }
    }
}

namespace ModelParallel.Tests.Models
{
    /// <summary>
    /// Partial sums in a chain: a partial RowParallel layer on a replicated input (slice, then partial), another fed that
    /// partial sum (reduce-scatter, then partial), and a RowParallel layer fed the second (reduce-scatter, then g).
    /// </summary>
    [ParallelModule]
    public sealed partial class PartialChain : nn.Module<Tensor, Tensor>
    {
        [RowParallel(ReduceOutput = false)] private readonly Linear a;
        [RowParallel(ReduceOutput = false)] private readonly Linear b;
        [RowParallel] private readonly Linear c;

        public PartialChain(long width) : base(nameof(PartialChain))
        {
            a = nn.Linear(width, width);
            b = nn.Linear(width, width);
            c = nn.Linear(width, width);
            RegisterComponents();
        }

        public override Tensor forward(Tensor x) => c.forward(b.forward(a.forward(x)));
    }

    /// <summary>The plain form of <see cref="PartialChain"/>.</summary>
    public sealed class PlainPartialChain : nn.Module<Tensor, Tensor>
    {
        private readonly Linear a;
        private readonly Linear b;
        private readonly Linear c;

        public PlainPartialChain(long width) : base(nameof(PlainPartialChain))
        {
            a = nn.Linear(width, width);
            b = nn.Linear(width, width);
            c = nn.Linear(width, width);
            RegisterComponents();
        }

        public override Tensor forward(Tensor x) => c.forward(b.forward(a.forward(x)));
    }
}
