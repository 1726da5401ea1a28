using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace ModelParallel.Tests.Models
{
    /// <summary>Input projection, partitioned blocks and a head; the model the equivalence tests partition.</summary>
    [ParallelModule]
    public sealed partial class TestModel : nn.Module<Tensor, Tensor>
    {
        private readonly Linear input;
        private readonly ModuleList<TestBlock> blocks = new();
        private readonly Linear head;

        public TestModel(ModelShape shape) : base(nameof(TestModel))
        {
            input = nn.Linear(shape.Features, shape.Width, hasBias: shape.Bias);
            for (int i = 0; i < shape.Depth; i++) blocks.Add(new TestBlock(shape.Width, shape.Hidden, shape.Bias));
            head = nn.Linear(shape.Width, shape.Outputs, hasBias: shape.Bias);
            RegisterComponents();
        }

        public override Tensor forward(Tensor x)
        {
            var h = input.forward(x);
            foreach (var block in blocks) h = block.forward(h);
            return head.forward(h);
        }
    }
}
