namespace ModelParallel.Generators.Tests
{
    /// <summary>Model sources the generator tests compile.</summary>
    internal static class Samples
    {
        public const string Usings = """
            using TorchSharp;
            using TorchSharp.Modules;
            using ModelParallel;
            using static TorchSharp.torch;

            """;

        public const string Block = Usings + """
            namespace Sample
            {
                [ParallelModule]
                public sealed partial class Block : nn.Module<Tensor, Tensor>
                {
                    private readonly LayerNorm norm;
                    [ColumnParallel] private readonly Linear up;
                    [RowParallel] private readonly Linear down;
                    [Replicated] private readonly Linear gate;

                    public Block(long width, long hidden) : base(nameof(Block))
                    {
                        norm = nn.LayerNorm(width);
                        up = nn.Linear(width, hidden);
                        down = nn.Linear(hidden, width, hasBias: false);
                        gate = nn.Linear(width, width);
                        RegisterComponents();
                    }

                    public override Tensor forward(Tensor x)
                    {
                        var h = nn.functional.gelu(up.forward(norm.forward(x)));
                        return x * torch.sigmoid(gate.forward(x)) + this.down.forward(h);
                    }
                }
            }
            """;

        /// <summary>A pipelined model over <see cref="Block"/>: embedding-like input on the first stage, head on the last.</summary>
        public const string Pipelined = Usings + """
            using System.Linq;

            namespace Sample
            {
                [ParallelModule]
                public sealed partial class Net : nn.Module<Tensor, Tensor>
                {
                    [FirstStage] private readonly Linear input;
                    [PipelineStages(Split = new[] { 1, 3 })] private readonly ModuleList<Block> blocks;
                    [LastStage] private readonly LayerNorm norm;
                    [LastStage, ColumnParallel] private readonly Linear head;

                    public Net(long width, int depth) : base(nameof(Net))
                    {
                        input = nn.Linear(3, width);
                        blocks = nn.ModuleList(Enumerable.Range(0, depth).Select(_ => new Block(width, 2 * width)).ToArray());
                        norm = nn.LayerNorm(width);
                        head = nn.Linear(width, 8);
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
            """;

        /// <summary>A vocabulary-parallel embedding, a ColumnParallel head and cross-entropy over the sharded logits.</summary>
        public const string LanguageModel = Usings + """
            namespace Sample
            {
                [ParallelModule]
                public sealed partial class Lm : nn.Module<Tensor, Tensor, Tensor>
                {
                    [VocabParallel] private readonly Embedding embed;
                    [ColumnParallel] private readonly Linear head;

                    public Lm() : base(nameof(Lm))
                    {
                        embed = nn.Embedding(64, 16);
                        head = nn.Linear(16, 64, hasBias: false);
                        RegisterComponents();
                    }

                    public override Tensor forward(Tensor ids, Tensor targets) =>
                        nn.functional.cross_entropy(head.forward(embed.forward(ids)).view(-1, 64), targets.view(-1));
                }
            }
            """;
    }
}
