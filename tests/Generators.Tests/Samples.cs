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
    }
}
