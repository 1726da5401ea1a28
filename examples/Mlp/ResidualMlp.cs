using System.Linq;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace ModelParallel.Examples.Mlp
{
    /// <summary>
    /// Input projection, a stack of <see cref="MlpBlock"/>s, a final norm and an output head. Under pp &gt; 1 the
    /// blocks are split across the pipeline stages, the input projection runs on the first and norm and head on the last.
    /// </summary>
    [ParallelModule]
    public sealed partial class ResidualMlp : nn.Module<Tensor, Tensor>
    {
        [FirstStage] private readonly Linear input;
        [PipelineStages] private readonly ModuleList<MlpBlock> blocks;
        [LastStage] private readonly LayerNorm norm;
        [LastStage] private readonly Linear head;

        public ResidualMlp(long features, long width, long hidden, long outputs, int depth) : base(nameof(ResidualMlp))
        {
            input = nn.Linear(features, width);
            blocks = nn.ModuleList(Enumerable.Range(0, depth).Select(_ => new MlpBlock(width, hidden)).ToArray());
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
