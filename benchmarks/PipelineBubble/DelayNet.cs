using System.Linq;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace ModelParallel.Benchmarks
{
    /// <summary>A block whose forward costs <c>ms</c> and backward 2 × <c>ms</c> (plus a tiny Linear).</summary>
    [ParallelModule]
    public sealed partial class DelayBlock : nn.Module<Tensor, Tensor>
    {
        private readonly Linear mix;
        private readonly int ms;

        public DelayBlock(long width, int ms) : base(nameof(DelayBlock))
        {
            mix = nn.Linear(width, width);
            this.ms = ms;
            RegisterComponents();
        }

        public override Tensor forward(Tensor x) => Delay.apply(x + mix.forward(x), ms);
    }

    /// <summary>Input on the first stage, delay blocks split over the pipeline, head on the last.</summary>
    [ParallelModule]
    public sealed partial class DelayNet : nn.Module<Tensor, Tensor>
    {
        [FirstStage] private readonly Linear input;
        [PipelineStages] private readonly ModuleList<DelayBlock> blocks;
        [LastStage] private readonly Linear head;

        public DelayNet(long width, int depth, int ms) : base(nameof(DelayNet))
        {
            input = nn.Linear(width, width);
            blocks = nn.ModuleList(Enumerable.Range(0, depth).Select(_ => new DelayBlock(width, ms)).ToArray());
            head = nn.Linear(width, 1);
            RegisterComponents();
        }

        public override Tensor forward(Tensor x)
        {
            x = input.forward(x);
            foreach (var block in blocks) x = block.forward(x);
            return head.forward(x);
        }
    }
}
