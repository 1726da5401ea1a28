using System.Linq;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace ModelParallel.Tests.Models
{
    /// <summary>
    /// Input projection on the first stage, <see cref="TestBlock"/>s split across the pp axis, a final norm and
    /// head on the last stage: the model the pipeline tests partition, written once at single-device semantics.
    /// </summary>
    [ParallelModule]
    public sealed partial class PipelineTestModel : nn.Module<Tensor, Tensor>
    {
        [FirstStage] private readonly Linear input;
        [PipelineStages] private readonly ModuleList<TestBlock> blocks;
        [LastStage] private readonly LayerNorm norm;
        [LastStage] private readonly Linear head;

        public PipelineTestModel(ModelShape shape) : base(nameof(PipelineTestModel))
        {
            input = nn.Linear(shape.Features, shape.Width, hasBias: shape.Bias);
            blocks = nn.ModuleList(Enumerable.Range(0, shape.Depth).Select(_ => new TestBlock(shape.Width, shape.Hidden, shape.Bias)).ToArray());
            norm = nn.LayerNorm(shape.Width);
            head = nn.Linear(shape.Width, shape.Outputs, hasBias: shape.Bias);
            RegisterComponents();
        }

        public override Tensor forward(Tensor x)
        {
            x = input.forward(x);
            foreach (var block in blocks) x = block.forward(x);
            return head.forward(norm.forward(x));
        }
    }

    /// <summary>The plain single-device form of <see cref="PipelineTestModel"/>, with the same parameter names.</summary>
    public sealed class ReferencePipelineModel : nn.Module<Tensor, Tensor>
    {
        private readonly Linear input;
        private readonly ModuleList<ReferenceBlock> blocks = new();
        private readonly LayerNorm norm;
        private readonly Linear head;

        public ReferencePipelineModel(ModelShape shape) : base(nameof(ReferencePipelineModel))
        {
            input = nn.Linear(shape.Features, shape.Width, hasBias: shape.Bias);
            for (int i = 0; i < shape.Depth; i++) blocks.Add(new ReferenceBlock(shape.Width, shape.Hidden, shape.Bias));
            norm = nn.LayerNorm(shape.Width);
            head = nn.Linear(shape.Width, shape.Outputs, hasBias: shape.Bias);
            RegisterComponents();
        }

        public override Tensor forward(Tensor x)
        {
            x = input.forward(x);
            foreach (var block in blocks) x = block.forward(x);
            return head.forward(norm.forward(x));
        }
    }
}
