using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace ModelParallel.Tests.Models
{
    /// <summary>
    /// The independent single-device reference: plain TorchSharp, no attributes, no generator, the same
    /// parameter names as <see cref="TestModel"/>.
    /// </summary>
    public sealed class ReferenceModel : nn.Module<Tensor, Tensor>
    {
        private readonly Linear input;
        private readonly ModuleList<ReferenceBlock> blocks = new();
        private readonly Linear head;

        public ReferenceModel(ModelShape shape) : base(nameof(ReferenceModel))
        {
            input = nn.Linear(shape.Features, shape.Width, hasBias: shape.Bias);
            for (int i = 0; i < shape.Depth; i++) blocks.Add(new ReferenceBlock(shape.Width, shape.Hidden, shape.Bias));
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

    /// <summary>The plain form of <see cref="TestBlock"/>.</summary>
    public sealed class ReferenceBlock : nn.Module<Tensor, Tensor>
    {
        private readonly LayerNorm norm;
        private readonly Linear up;
        private readonly Linear down;

        public ReferenceBlock(long width, long hidden, bool bias) : base(nameof(ReferenceBlock))
        {
            norm = nn.LayerNorm(width);
            up = nn.Linear(width, hidden, hasBias: bias);
            down = nn.Linear(hidden, width, hasBias: bias);
            RegisterComponents();
        }

        public override Tensor forward(Tensor x) => x + down.forward(nn.functional.gelu(up.forward(norm.forward(x))));
    }

    /// <summary>The sizes of a test model.</summary>
    public sealed record ModelShape(long Features, long Width, long Hidden, long Outputs, int Depth, bool Bias)
    {
        public override string ToString() => $"{Features}->{Width}x{Hidden}x{Depth}->{Outputs}{(Bias ? " bias" : " no bias")}";
    }
}
