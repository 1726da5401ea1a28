using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace ModelParallel.Examples.Mlp
{
    /// <summary>Input projection, a stack of <see cref="MlpBlock"/>s, a final norm and an output head.</summary>
    [ParallelModule]
    public sealed partial class ResidualMlp : nn.Module<Tensor, Tensor>
    {
        private readonly Linear input;
        private readonly ModuleList<MlpBlock> blocks = new();
        private readonly LayerNorm norm;
        private readonly Linear head;

        public ResidualMlp(long features, long width, long hidden, long outputs, int depth) : base(nameof(ResidualMlp))
        {
            input = nn.Linear(features, width);
            for (int i = 0; i < depth; i++) blocks.Add(new MlpBlock(width, hidden));
            norm = nn.LayerNorm(width);
            head = nn.Linear(width, outputs);
            RegisterComponents();
        }

        public override Tensor forward(Tensor x)
        {
            var h = input.forward(x);
            foreach (var block in blocks) h = block.forward(h);
            return head.forward(norm.forward(h));
        }
    }
}
