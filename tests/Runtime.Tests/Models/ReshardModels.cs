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
