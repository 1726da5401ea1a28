using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace ModelParallel.Tests.Models
{
    /// <summary>A layer and a norm used only in the steps that take the branch (a conditional expert, say).</summary>
    [ParallelModule]
    public sealed partial class BranchModel : nn.Module<Tensor, Tensor>
    {
        private readonly Linear up;
        private readonly Linear branch;
        private readonly LayerNorm branchNorm;

        public BranchModel(long width) : base(nameof(BranchModel))
        {
            up = nn.Linear(width, width);
            branch = nn.Linear(width, width);
            branchNorm = nn.LayerNorm(width);
            RegisterComponents();
        }

        /// <summary>Whether forward goes through the branch.</summary>
        public bool TakeBranch { get; set; }

        /// <summary>Whether a branch taken is computed and then dropped: its layer runs, but no gradient comes back to it.</summary>
        public bool DropBranch { get; set; }

        public override Tensor forward(Tensor x)
        {
            var h = up.forward(x);
            if (!TakeBranch) return h;
            var side = branch.forward(branchNorm.forward(h));
            return DropBranch ? h : h + side;
        }
    }

    /// <summary>The plain form of <see cref="BranchModel"/>, with the same parameter names.</summary>
    public sealed class ReferenceBranchModel : nn.Module<Tensor, Tensor>
    {
        private readonly Linear up;
        private readonly Linear branch;
        private readonly LayerNorm branchNorm;

        public ReferenceBranchModel(long width) : base(nameof(ReferenceBranchModel))
        {
            up = nn.Linear(width, width);
            branch = nn.Linear(width, width);
            branchNorm = nn.LayerNorm(width);
            RegisterComponents();
        }

        public bool TakeBranch { get; set; }

        /// <summary>Whether a branch taken is computed and then dropped: its layer runs, but no gradient comes back to it.</summary>
        public bool DropBranch { get; set; }

        public override Tensor forward(Tensor x)
        {
            var h = up.forward(x);
            if (!TakeBranch) return h;
            var side = branch.forward(branchNorm.forward(h));
            return DropBranch ? h : h + side;
        }
    }
}
