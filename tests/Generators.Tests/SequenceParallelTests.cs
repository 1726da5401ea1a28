using System.Linq;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.Text;
using Xunit;

namespace ModelParallel.Generators.Tests
{
    /// <summary>
    /// Sequence parallelism ([ParallelModule(SequenceParallel = true)]): the generated partition of a block and of the
    /// stack that feeds it, and what is refused: a whole value that cannot be split where it is produced, a
    /// sequence-parallel module called from plain code (MP0020), pipeline stages, a size read of the split sequence.
    /// </summary>
    [Trait("Category", "Generator")]
    public sealed class SequenceParallelTests
    {
        private const string Block = """
            [ParallelModule(SequenceParallel = true)]
            public sealed partial class SpBlock : nn.Module<Tensor, Tensor>
            {
                private readonly LayerNorm attentionNorm;
                [ColumnParallel] private readonly Linear qkv;
                [RowParallel] private readonly Linear projection;
                private readonly LayerNorm mlpNorm;
                [ColumnParallel] private readonly Linear up;
                [RowParallel] private readonly Linear down;
                private readonly long heads = 4, headSize = 4;

                public SpBlock() : base("SpBlock")
                {
                    attentionNorm = nn.LayerNorm(16);
                    qkv = nn.Linear(16, 48, hasBias: false);
                    projection = nn.Linear(16, 16);
                    mlpNorm = nn.LayerNorm(16);
                    up = nn.Linear(16, 32);
                    down = nn.Linear(32, 16);
                    RegisterComponents();
                }

                public override Tensor forward(Tensor x)
                {
                    var fused = qkv.forward(attentionNorm.forward(x));
                    long batch = fused.shape[^3], time = fused.shape[^2];
                    var parts = fused.chunk(3, -1);
                    var q = parts[0].view(batch, time, heads, headSize).transpose(1, 2);
                    var k = parts[1].view(batch, time, heads, headSize).transpose(1, 2);
                    var v = parts[2].view(batch, time, heads, headSize).transpose(1, 2);
                    var attended = nn.functional.scaled_dot_product_attention(q, k, v, is_casual: true);
                    var merged = attended.transpose(1, 2).contiguous().view(batch, time, heads * headSize);
                    x = x + projection.forward(merged);
                    return x + down.forward(nn.functional.gelu(up.forward(mlpNorm.forward(x))));
                }
            }

            """;

        private const string Stack = """
            [ParallelModule]
            public sealed partial class SpStack : nn.Module<Tensor, Tensor>
            {
                private readonly Embedding positions;
                private readonly LayerNorm inputNorm;
                private readonly ModuleList<SpBlock> blocks = new();
                private readonly LayerNorm norm;
                [ColumnParallel] private readonly Linear up;
                [RowParallel] private readonly Linear down;

                public SpStack() : base("SpStack")
                {
                    positions = nn.Embedding(8, 16);
                    inputNorm = nn.LayerNorm(16);
                    blocks.Add(new SpBlock());
                    norm = nn.LayerNorm(16);
                    up = nn.Linear(16, 32);
                    down = nn.Linear(32, 16);
                    RegisterComponents();
                }

                public override Tensor forward(Tensor x)
                {
                    var h = inputNorm.forward(x);
                    foreach (var block in blocks) h = block.forward(h);
                    h = h + positions.forward(torch.arange(x.shape[1]));
                    return down.forward(up.forward(norm.forward(h)));
                }
            }

            """;

        [Fact]
        public void TheBlockAndTheStackThatFeedsItMatchTheApprovedFiles()
        {
            var (result, compilation) = GeneratorHarness.Run(("Sp.cs", Samples.Usings + "namespace Sample {\n" + Block + Stack + "}\n"));
            Assert.Null(result.Exception);
            Assert.Empty(result.Diagnostics.Where(d => d.Severity >= DiagnosticSeverity.Warning));
            Assert.Empty(compilation.Where(d => d.Severity >= DiagnosticSeverity.Warning));
            var block = result.GeneratedSources.Single(s => s.HintName == "Sample.SpBlock.Partition.g.cs").SourceText.ToString();
            var stack = result.GeneratedSources.Single(s => s.HintName == "Sample.SpStack.Partition.g.cs").SourceText.ToString();
            Assert.Contains("SequenceParallel.ColumnForward(\"Sample.SpBlock.qkv\"", block);
            Assert.Contains("SequenceParallel.RowForward(\"Sample.SpBlock.projection\"", block);
            Assert.Contains("SequenceParallel.LayerNorm(", block);
            // The input norm's output and the positions are split where they are produced; the final norm and up run on the stream.
            Assert.Equal(2, stack.Split("SequenceParallel.Scatter(").Length - 1);
            Assert.Contains("SequenceParallel.ColumnForward(\"Sample.SpStack.up\"", stack);
            Assert.Contains("ParallelLinear.RowForward(\"Sample.SpStack.down\"", stack);
            Snapshot.Match("SpBlock.Partition", block);
            Snapshot.Match("SpStack.Partition", stack);
            var report = result.GeneratedSources.Single(s => s.HintName == "Sample.SpBlock.PartitionReport.g.cs").SourceText.ToString();
            Assert.Contains("Activation memory (sequence parallel)", report);
            Snapshot.Match("SpBlock.PartitionReport", report);
        }

        [Fact]
        public void MP0020_ASequenceParallelModuleCalledFromPlainCodeIsRefusedAtTheCall()
        {
            var (source, span) = Marked(Block + """
                public static class Training
                {
                    public static Tensor Step(SpBlock block, Tensor x) => [|block.forward(x)|];
                }
                """);
            var diagnostic = Assert.Single(GeneratorHarness.Analyze(("Model.cs", source)));
            Assert.Equal("MP0020", diagnostic.Id);
            Assert.Equal(span, diagnostic.Location.SourceSpan);
            Assert.Contains("'SpBlock' is [ParallelModule(SequenceParallel = true)]", diagnostic.GetMessage());
        }

        [Fact]
        public void TheParentsOwnInputCannotBeSplitAndIsRefusedAtTheCallWithTheReason()
        {
            var (source, span) = Marked(Block + """
                [ParallelModule]
                public sealed partial class Direct : nn.Module<Tensor, Tensor>
                {
                    private readonly SpBlock block = new();
                    public Direct() : base("Direct") { RegisterComponents(); }
                    public override Tensor forward(Tensor x) => [|block.forward(x)|];
                }
                """);
            var diagnostic = Assert.Single(GeneratorHarness.Analyze(("Model.cs", source)));
            Assert.Equal("MP0014", diagnostic.Id);
            Assert.Equal(span, diagnostic.Location.SourceSpan);
            Assert.Contains("takes its input split along the sequence (S(-2))", diagnostic.GetMessage());
            Assert.Contains("not the unchanged output of a module's forward", diagnostic.GetMessage());
        }

        [Fact]
        public void AWholeValueComputedByOperatorsMeetingTheStreamIsRefused()
        {
            var (source, span) = Marked("""
                [ParallelModule(SequenceParallel = true)]
                public sealed partial class Residual : nn.Module<Tensor, Tensor>
                {
                    [ColumnParallel] private readonly Linear up;
                    [RowParallel] private readonly Linear down;
                    public Residual() : base("Residual") { up = nn.Linear(16, 32); down = nn.Linear(32, 16); RegisterComponents(); }
                    public override Tensor forward(Tensor x)
                    {
                        var bias = torch.ones(2, 8, 16) * 2;
                        return [|down.forward(up.forward(x)) + bias|];
                    }
                }
                """);
            var diagnostic = Assert.Single(GeneratorHarness.Analyze(("Model.cs", source)));
            Assert.Equal("MP0014", diagnostic.Id);
            Assert.Equal(span, diagnostic.Location.SourceSpan);
            Assert.Contains("split along the sequence only where it is produced", diagnostic.GetMessage());
        }

        [Fact]
        public void ASizeReadOfTheSplitSequenceIsRefused()
        {
            var (source, span) = Marked(Block.Replace("long batch = fused.shape[^3], time = fused.shape[^2];", "long batch = fused.shape[^3], time = [|x.shape[^2]|];"));
            var diagnostics = GeneratorHarness.Analyze(("Model.cs", source));
            var diagnostic = Assert.Single(diagnostics);
            Assert.Equal("MP0014", diagnostic.Id);
            Assert.Equal(span, diagnostic.Location.SourceSpan);
            Assert.Contains("reads the size of the sharded dimension", diagnostic.GetMessage());
        }

        [Fact]
        public void PipelineStagesWithSequenceParallelBlocksAreRefused()
        {
            var (source, span) = Marked(Block + """
                [ParallelModule]
                public sealed partial class Piped : nn.Module<Tensor, Tensor>
                {
                    [FirstStage] private readonly LayerNorm inputNorm;
                    [PipelineStages] private readonly ModuleList<SpBlock> blocks;
                    public Piped() : base("Piped")
                    {
                        inputNorm = nn.LayerNorm(16);
                        blocks = nn.ModuleList(System.Linq.Enumerable.Range(0, 2).Select(_ => new SpBlock()).ToArray());
                        RegisterComponents();
                    }
                    public override Tensor forward(Tensor x)
                    {
                        var h = inputNorm.forward(x);
                        foreach (var block in blocks) h = [|block.forward(h)|];
                        return h;
                    }
                }
                """);
            var diagnostics = GeneratorHarness.Analyze(("Model.cs", "using System.Linq;\n" + source)).Where(d => d.Id == "MP0014").ToList();
            var diagnostic = Assert.Single(diagnostics);
            Assert.Equal(span.Start + "using System.Linq;\n".Length, diagnostic.Location.SourceSpan.Start);
            Assert.Contains("not supported in a module with pipeline stages", diagnostic.GetMessage());
        }

        private static (string Source, TextSpan Span) Marked(string markup)
        {
            var prefix = Samples.Usings + "namespace Sample {\n";
            int start = prefix.Length + markup.IndexOf("[|", System.StringComparison.Ordinal);
            int end = prefix.Length + markup.IndexOf("|]", System.StringComparison.Ordinal) - 2;
            return (prefix + markup.Replace("[|", "").Replace("|]", "") + "\n}\n", new TextSpan(start, end - start));
        }
    }
}
