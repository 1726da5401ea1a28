using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace ModelParallel.Tests.Models
{
#pragma warning disable MP0015 // two ColumnParallel layers in a row on purpose: the inserted all-gather is under test
    /// <summary>Column, Column, Row: the generator gathers the first layer's sharded output before the second.</summary>
    [ParallelModule]
    public sealed partial class ColumnColumnRow : nn.Module<Tensor, Tensor>
    {
        [ColumnParallel] private readonly Linear a;
        [ColumnParallel] private readonly Linear b;
        [RowParallel] private readonly Linear c;

        public ColumnColumnRow(long width) : base(nameof(ColumnColumnRow))
        {
            a = nn.Linear(width, 2 * width);
            b = nn.Linear(2 * width, 2 * width);
            c = nn.Linear(2 * width, width);
            RegisterComponents();
        }

        public override Tensor forward(Tensor x) => c.forward(nn.functional.gelu(b.forward(a.forward(x))));
    }
#pragma warning restore MP0015

    /// <summary>A RowParallel layer on a replicated input: the generator takes the local slice (MP0016, info).</summary>
    [ParallelModule]
    public sealed partial class RowOnReplicated : nn.Module<Tensor, Tensor>
    {
        [RowParallel] private readonly Linear down;

        public RowOnReplicated(long width) : base(nameof(RowOnReplicated))
        {
            down = nn.Linear(2 * width, width);
            RegisterComponents();
        }

        public override Tensor forward(Tensor x) => down.forward(x);
    }

    /// <summary>Plain references with the same parameter names.</summary>
    public sealed class PlainColumnColumnRow : nn.Module<Tensor, Tensor>
    {
        private readonly Linear a, b, c;

        public PlainColumnColumnRow(long width) : base(nameof(PlainColumnColumnRow))
        {
            a = nn.Linear(width, 2 * width);
            b = nn.Linear(2 * width, 2 * width);
            c = nn.Linear(2 * width, width);
            RegisterComponents();
        }

        public override Tensor forward(Tensor x) => c.forward(nn.functional.gelu(b.forward(a.forward(x))));
    }

    /// <inheritdoc cref="PlainColumnColumnRow"/>
    public sealed class PlainRow : nn.Module<Tensor, Tensor>
    {
        private readonly Linear down;

        public PlainRow(long width) : base(nameof(PlainRow))
        {
            down = nn.Linear(2 * width, width);
            RegisterComponents();
        }

        public override Tensor forward(Tensor x) => down.forward(x);
    }
}

namespace ModelParallel.Tests.Models
{
    /// <summary>
    /// Two MLP branches whose RowParallel outputs stay partial sums (ReduceOutput = false), added and scaled while
    /// partial, then reduced once where the next ColumnParallel layer needs the whole value: 2 all-reduces forward
    /// instead of 3.
    /// </summary>
    [ParallelModule]
    public sealed partial class TwoBranches : nn.Module<Tensor, Tensor>
    {
        [ColumnParallel] private readonly Linear a1;
        [ColumnParallel] private readonly Linear a2;
        [RowParallel(ReduceOutput = false)] private readonly Linear b1;
        [RowParallel(ReduceOutput = false)] private readonly Linear b2;
        [ColumnParallel] private readonly Linear c;
        [RowParallel] private readonly Linear d;

        public TwoBranches(long width) : base(nameof(TwoBranches))
        {
            a1 = nn.Linear(width, 2 * width);
            a2 = nn.Linear(width, 2 * width);
            b1 = nn.Linear(2 * width, width);
            b2 = nn.Linear(2 * width, width);
            c = nn.Linear(width, 2 * width);
            d = nn.Linear(2 * width, width);
            RegisterComponents();
        }

        public override Tensor forward(Tensor x)
        {
            var sum = b1.forward(nn.functional.gelu(a1.forward(x))) + b2.forward(nn.functional.gelu(a2.forward(x)));
            var half = sum * 0.5;
            return d.forward(nn.functional.gelu(c.forward(half)));
        }
    }

    /// <summary>The plain form of <see cref="TwoBranches"/>.</summary>
    public sealed class PlainTwoBranches : nn.Module<Tensor, Tensor>
    {
        private readonly Linear a1, a2, b1, b2, c, d;

        public PlainTwoBranches(long width) : base(nameof(PlainTwoBranches))
        {
            a1 = nn.Linear(width, 2 * width);
            a2 = nn.Linear(width, 2 * width);
            b1 = nn.Linear(2 * width, width);
            b2 = nn.Linear(2 * width, width);
            c = nn.Linear(width, 2 * width);
            d = nn.Linear(2 * width, width);
            RegisterComponents();
        }

        public override Tensor forward(Tensor x)
        {
            var sum = b1.forward(nn.functional.gelu(a1.forward(x))) + b2.forward(nn.functional.gelu(a2.forward(x)));
            return d.forward(nn.functional.gelu(c.forward(sum * 0.5)));
        }
    }
}

namespace ModelParallel.Tests.Models
{
    /// <summary>An MLP with dropout on its sharded hidden activation and on its replicated output.</summary>
    [ParallelModule]
    public sealed partial class DropoutMlp : nn.Module<Tensor, Tensor>
    {
        [ColumnParallel] private readonly Linear up;
        [RowParallel] private readonly Linear down;
        private readonly bool shardedDropout;

        public DropoutMlp(long width, bool shardedDropout) : base(nameof(DropoutMlp))
        {
            up = nn.Linear(width, 2 * width);
            down = nn.Linear(2 * width, width);
            this.shardedDropout = shardedDropout;
            RegisterComponents();
        }

        public override Tensor forward(Tensor x)
        {
            var hidden = nn.functional.gelu(up.forward(x));
            if (shardedDropout) hidden = nn.functional.dropout(hidden, 0.5, true);
            return nn.functional.dropout(down.forward(hidden), 0.5, true);
        }
    }
}

namespace ModelParallel.Tests.Models
{
    /// <summary>A partial sum fed to a RowParallel layer: the generator reduce-scatters it onto the last dimension.</summary>
    [ParallelModule]
    public sealed partial class PartialIntoRow : nn.Module<Tensor, Tensor>
    {
        [ColumnParallel] private readonly Linear a;
        [RowParallel(ReduceOutput = false)] private readonly Linear b;
        [RowParallel] private readonly Linear c;

        public PartialIntoRow(long width) : base(nameof(PartialIntoRow))
        {
            a = nn.Linear(width, 2 * width);
            b = nn.Linear(2 * width, width);
            c = nn.Linear(width, width);
            RegisterComponents();
        }

        public override Tensor forward(Tensor x) => c.forward(b.forward(nn.functional.gelu(a.forward(x))));
    }

    /// <summary>The plain form of <see cref="PartialIntoRow"/>.</summary>
    public sealed class PlainPartialIntoRow : nn.Module<Tensor, Tensor>
    {
        private readonly Linear a, b, c;

        public PlainPartialIntoRow(long width) : base(nameof(PlainPartialIntoRow))
        {
            a = nn.Linear(width, 2 * width);
            b = nn.Linear(2 * width, width);
            c = nn.Linear(width, width);
            RegisterComponents();
        }

        public override Tensor forward(Tensor x) => c.forward(b.forward(nn.functional.gelu(a.forward(x))));
    }
}
