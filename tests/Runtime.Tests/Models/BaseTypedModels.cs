using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace ModelParallel.Tests.Models
{
    /// <summary>A [ParallelModule] whose forward returns its ColumnParallel layer's output, S(-1): 2 features, 1 per rank at tp = 2.</summary>
    [ParallelModule]
    public sealed partial class NarrowShardedHead : nn.Module<Tensor, Tensor>
    {
        [ColumnParallel] private readonly Linear proj;
        public NarrowShardedHead() : base(nameof(NarrowShardedHead)) { proj = nn.Linear(2, 2); RegisterComponents(); }
        public override Tensor forward(Tensor x) => proj.forward(x);
    }

    /// <summary>A [ParallelModule] whose forward returns a whole value: ColumnParallel then RowParallel.</summary>
    [ParallelModule]
    public sealed partial class WholeInner : nn.Module<Tensor, Tensor>
    {
        [ColumnParallel] private readonly Linear up;
        [RowParallel] private readonly Linear down;
        public WholeInner() : base(nameof(WholeInner)) { up = nn.Linear(2, 4); down = nn.Linear(4, 2); RegisterComponents(); }
        public override Tensor forward(Tensor x) => down.forward(up.forward(x));
    }

    /// <summary>
    /// A parent holding its sub-module through the base type nn.Module&lt;Tensor, Tensor&gt;: the walk cannot see which
    /// module it is and takes its output whole; the generated call checks that at run time. With the sharded head, the
    /// local output [.., 1] would broadcast silently against x [.., 2].
    /// </summary>
    [ParallelModule]
    public sealed partial class BaseTypedParent : nn.Module<Tensor, Tensor>
    {
        private readonly nn.Module<Tensor, Tensor> inner;
        public BaseTypedParent(bool sharded) : base(nameof(BaseTypedParent))
        {
            inner = sharded ? new NarrowShardedHead() : new WholeInner();
            RegisterComponents();
        }
        public override Tensor forward(Tensor x) => inner.forward(x) + x;
    }

    /// <summary>A parent running a sharded-output [ParallelModule] inside torch's Sequential, which the walk cannot see into.</summary>
    [ParallelModule]
    public sealed partial class SequentialParent : nn.Module<Tensor, Tensor>
    {
        private readonly Sequential inner;
        public SequentialParent() : base(nameof(SequentialParent))
        {
            inner = nn.Sequential(("head", new NarrowShardedHead()));
            RegisterComponents();
        }
        public override Tensor forward(Tensor x) => inner.forward(x) + x;
    }

    /// <summary>The plain form of <see cref="BaseTypedParent"/> over <see cref="WholeInner"/>, with the same parameter names.</summary>
    public sealed class PlainBaseTypedParent : nn.Module<Tensor, Tensor>
    {
        private readonly Sequential inner;
        public PlainBaseTypedParent() : base(nameof(PlainBaseTypedParent))
        {
            inner = nn.Sequential(("up", nn.Linear(2, 4)), ("down", nn.Linear(4, 2)));
            RegisterComponents();
        }
        public override Tensor forward(Tensor x) => inner.forward(x) + x;
    }
}
