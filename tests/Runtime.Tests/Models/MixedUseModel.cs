using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace ModelParallel.Tests.Models
{
    /// <summary>
    /// A partitioned block whose up projection's weight is also read directly (a second product with the input), so the
    /// weight's gradient comes from its layer's forward and from outside it.
    /// </summary>
    [ParallelModule]
    public sealed partial class MixedUseModel : nn.Module<Tensor, Tensor>
    {
        private readonly Linear up;
        private readonly Linear down;

        public MixedUseModel(long width) : base(nameof(MixedUseModel))
        {
            up = nn.Linear(width, width);
            down = nn.Linear(width, width);
            RegisterComponents();
        }

        /// <summary>Whether forward reads the weight directly too (by default it does).</summary>
        public bool ReadDirectly { get; set; } = true;

        public override Tensor forward(Tensor x)
        {
            var h = up.forward(x);
            return down.forward(nn.functional.gelu(ReadDirectly ? h + x.matmul(up.weight!.t()) : h));
        }
    }

    /// <summary>The plain form of <see cref="MixedUseModel"/>, with the same parameter names.</summary>
    public sealed class ReferenceMixedUseModel : nn.Module<Tensor, Tensor>
    {
        private readonly Linear up;
        private readonly Linear down;

        public ReferenceMixedUseModel(long width) : base(nameof(ReferenceMixedUseModel))
        {
            up = nn.Linear(width, width);
            down = nn.Linear(width, width);
            RegisterComponents();
        }

        public bool ReadDirectly { get; set; } = true;

        public override Tensor forward(Tensor x)
        {
            var h = up.forward(x);
            return down.forward(nn.functional.gelu(ReadDirectly ? h + x.matmul(up.weight!.t()) : h));
        }
    }
}
