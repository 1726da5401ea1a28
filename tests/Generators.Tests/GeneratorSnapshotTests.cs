using System.Linq;
using Microsoft.CodeAnalysis;
using Xunit;

namespace ModelParallel.Generators.Tests
{
    [Trait("Category", "Generator")]
    public sealed class GeneratorSnapshotTests
    {
        [Fact]
        public void GeneratedPartitionOfASampleBlockMatchesTheApprovedFile()
        {
            var (result, compilation) = GeneratorHarness.Run(("Block.cs", Samples.Block));
            Assert.Null(result.Exception);
            Assert.Empty(result.Diagnostics);
            var source = Assert.Single(result.GeneratedSources, s => s.HintName.EndsWith(".Partition.g.cs"));
            Assert.Equal("Sample.Block.Partition.g.cs", source.HintName);
            Snapshot.Match("Block.Partition", source.SourceText.ToString());
        }

        [Fact]
        public void GeneratedCodeCompilesWithoutWarningsAndInterceptsEveryLayerCall()
        {
            var (result, compilation) = GeneratorHarness.Run(("Block.cs", Samples.Block));
            Assert.Empty(compilation.Where(d => d.Severity >= DiagnosticSeverity.Warning));
            var text = result.GeneratedSources.Single(s => s.HintName.EndsWith(".Partition.g.cs")).SourceText.ToString();
            // Four factories (norm's too, so a block held by another pipeline rank builds it on the meta device)
            // and three forwards (the replicated gate's too, for dp gradient taps).
            Assert.Equal(7, text.Split("[global::System.Runtime.CompilerServices.InterceptsLocation(").Length - 1);
            Assert.Contains("global::TorchSharp.torch.nn.LayerNorm(normalized_shape, eps, elementwise_affine, bias, global::ModelParallel.Pipelining.PipelineBuild.DeviceFor(null, device), dtype)", text);
            Assert.Contains("CreateColumnParallel(\"Sample.Block.up\"", text);
            Assert.Contains("CreateRowParallel(\"Sample.Block.down\"", text);
            Assert.Contains("CreateReplicated(\"Sample.Block.gate\"", text);
            Assert.Contains("ColumnForward(\"Sample.Block.up\"", text);
            Assert.Contains("RowForward(\"Sample.Block.down\"", text);
            Assert.Contains("ReplicatedForward(\"Sample.Block.gate\"", text);
        }

        [Fact]
        public void GeneratedPipelinePartitionMatchesTheApprovedFile()
        {
            var (result, compilation) = GeneratorHarness.Run(("Block.cs", Samples.Block), ("Net.cs", Samples.Pipelined));
            Assert.Null(result.Exception);
            Assert.Empty(result.Diagnostics);
            Assert.Empty(compilation.Where(d => d.Severity >= DiagnosticSeverity.Warning));
            var source = Assert.Single(result.GeneratedSources, s => s.HintName == "Sample.Net.Partition.g.cs");
            var text = source.SourceText.ToString();
            // The blocks' Select, input's and head's factories and forwards (stage-gated), norm's factory and forward, the block call.
            Assert.Equal(8, text.Split("[global::System.Runtime.CompilerServices.InterceptsLocation(").Length - 1);
            Assert.Contains("PipelineBuild.Blocks(\"Sample.Net.blocks\", source, selector, new int[] { 1, 3 })", text);
            Assert.Contains("PipelineRun.Runs(\"Sample.Net.head\", global::ModelParallel.Pipelining.PipelineRole.Last) ? global::ModelParallel.Layers.ParallelLinear.ColumnForward(", text);
            Assert.Contains("PipelineRun.Block(\"Sample.Net.blocks\", self, ", text);
            Snapshot.Match("Net.Partition", text);
        }

        [Fact]
        public void GeneratedVocabularyParallelPartitionMatchesTheApprovedFile()
        {
            var (result, compilation) = GeneratorHarness.Run(("Lm.cs", Samples.LanguageModel));
            Assert.Null(result.Exception);
            Assert.Empty(result.Diagnostics);
            Assert.Empty(compilation.Where(d => d.Severity >= DiagnosticSeverity.Warning));
            var text = result.GeneratedSources.Single(s => s.HintName == "Sample.Lm.Partition.g.cs").SourceText.ToString();
            // The embedding's shard is recorded as its rank's, so it cannot be used where that rank's context is not.
            // Its rows are drawn from the run's seed, not from the generator rank threads share.
            Assert.Contains("global::ModelParallel.Layers.LayerOwnership.Own(global::ModelParallel.Layers.VocabParallel.Seeded(\"Sample.Lm.embed\", global::TorchSharp.torch.nn.Embedding(global::ModelParallel.Layers.VocabParallel.LocalRows(\"Sample.Lm.embed\"", text);
            Snapshot.Match("Lm.Partition", text);
        }

        [Fact]
        public void GeneratedPartialSumVariantsMatchTheApprovedFile()
        {
            const string source = Samples.Usings + """
                namespace Sample
                {
                    [ParallelModule]
                    public sealed partial class PartialChain : nn.Module<Tensor, Tensor>
                    {
                        [RowParallel(ReduceOutput = false)] private readonly Linear a;
                        [RowParallel(ReduceOutput = false)] private readonly Linear b;
                        [RowParallel] private readonly Linear c;

                        public PartialChain() : base(nameof(PartialChain))
                        {
                            a = nn.Linear(8, 8);
                            b = nn.Linear(8, 8);
                            c = nn.Linear(8, 8);
                            RegisterComponents();
                        }

                        public override Tensor forward(Tensor x) => c.forward(b.forward(a.forward(x)));
                    }
                }
                """;
            var (result, compilation) = GeneratorHarness.Run(("PartialChain.cs", source));
            Assert.Empty(compilation.Where(d => d.Severity >= DiagnosticSeverity.Warning));
            var text = result.GeneratedSources.Single(s => s.HintName == "Sample.PartialChain.Partition.g.cs").SourceText.ToString();
            Assert.Contains("RowForwardSlicedPartial(\"Sample.PartialChain.a\"", text);
            Assert.Contains("RowForwardReduceScatteredPartial(\"Sample.PartialChain.b\"", text);
            Assert.Contains("RowForwardReduceScattered(\"Sample.PartialChain.c\"", text);
            Snapshot.Match("PartialChain.Partition", text);
        }

        [Fact]
        public void TheAttentionFamiliesArePartitionedAsApproved()
        {
            // Grouped-query attention with rotary embeddings (repeat_interleave, broadcast tables, a helper), through expand,
            // and multi-query attention (whole keys and values sliced to each rank's heads).
            using var stream = typeof(GeneratorSnapshotTests).Assembly.GetManifestResourceStream("AttentionFamilies.cs")!;
            var source = new System.IO.StreamReader(stream).ReadToEnd();
            var (result, compilation) = GeneratorHarness.Run(("AttentionFamilies.cs", source));
            Assert.Null(result.Exception);
            Assert.Empty(compilation.Where(d => d.Severity >= DiagnosticSeverity.Warning));
            string Partition(string name) => result.GeneratedSources.Single(s => s.HintName == $"ModelParallel.Tests.Models.{name}.Partition.g.cs").SourceText.ToString();
            var expanded = Partition("ExpandedGroupedQueryAttention");
            Assert.Equal(2, expanded.Split("global::ModelParallel.Layers.ShardedShapes.Expand(").Length - 1);
            Assert.Equal(2, expanded.Split("global::ModelParallel.Layers.ShardedShapes.Reshape(").Length - 1);
            var multiQuery = Partition("MultiQueryAttention");
            Assert.Contains("global::ModelParallel.Layers.ShardedAttention.SlicedKeysValues(", multiQuery);
            Snapshot.Match("GroupedQueryAttention.Partition", Partition("GroupedQueryAttention"));
            Snapshot.Match("ExpandedGroupedQueryAttention.Partition", expanded);
            Snapshot.Match("MultiQueryAttention.Partition", multiQuery);
        }

        [Fact]
        public void TheTransformerBlockExampleIsPartitionedAndReportedAsApproved()
        {
            using var stream = typeof(GeneratorSnapshotTests).Assembly.GetManifestResourceStream("TransformerBlock.cs")!;
            var source = new System.IO.StreamReader(stream).ReadToEnd();
            var (result, compilation) = GeneratorHarness.Run(("TransformerBlock.cs", source));
            Assert.Null(result.Exception);
            Assert.Empty(result.Diagnostics);
            Assert.Empty(compilation.Where(d => d.Severity >= DiagnosticSeverity.Warning));
            var partition = result.GeneratedSources.Single(s => s.HintName.EndsWith(".TransformerBlock.Partition.g.cs")).SourceText.ToString();
            var report = result.GeneratedSources.Single(s => s.HintName.EndsWith(".TransformerBlock.PartitionReport.g.cs")).SourceText.ToString();
            Assert.Contains("CreateColumnParallel(\"ModelParallel.Examples.Transformer.TransformerBlock.qkv\", inputSize, outputSize, hasBias, device, dtype, chunks: 3)", partition);
            Assert.Equal(4, partition.Split("global::ModelParallel.Layers.ShardedShapes.View(").Length - 1);
            // Exactly the 4 collectives of a Megatron block: f before each ColumnParallel (backward), g after each RowParallel (forward).
            var rows = report.Split('\n').Where(l => l.StartsWith("// | ") && l.Contains("all-")).ToList();
            Assert.Equal(4, rows.Count);
            Assert.Equal(2, rows.Count(r => r.Contains("| forward |")));
            Assert.Equal(2, rows.Count(r => r.Contains("| backward |")));
            Assert.Contains("Total: 4 collectives per step, 2 in forward and 2 in backward; 2 of them are f's, which do not run when their input needs no gradient.", report);
            Snapshot.Match("TransformerBlock.Partition", partition);
            Snapshot.Match("TransformerBlock.PartitionReport", report);
        }

        [Fact]
        public void DropoutGetsAStreamPerTpRankOnShardedValuesAndASharedOneOnReplicated()
        {
            var source = Samples.Usings + """
                namespace Sample
                {
                    [ParallelModule]
                    public sealed partial class Block : nn.Module<Tensor, Tensor>
                    {
                        [ColumnParallel] private readonly Linear up;
                        [RowParallel] private readonly Linear down;
                        public Block() : base("Block") { up = nn.Linear(4, 8); down = nn.Linear(8, 4); RegisterComponents(); }
                        public override Tensor forward(Tensor x)
                            => nn.functional.dropout(down.forward(nn.functional.dropout(up.forward(x), 0.1, true)), 0.1, true);
                    }
                }
                """;
            var (result, compilation) = GeneratorHarness.Run(("Block.cs", source));
            Assert.Empty(compilation.Where(d => d.Severity >= DiagnosticSeverity.Warning));
            var text = result.GeneratedSources.Single(s => s.HintName.EndsWith(".Partition.g.cs")).SourceText.ToString();
            // Where each call is, computed from the source: the outer dropout (of down's replicated output) and the inner one (of up's sharded output).
            var line = source.Split('\n')[13];
            int outer = line.IndexOf("nn.functional.dropout(down", System.StringComparison.Ordinal) + 1;
            int inner = line.IndexOf("nn.functional.dropout(up", System.StringComparison.Ordinal) + 1;
            Assert.Contains($"ParallelDropout.Dropout(\"Sample.Block.forward at Block.cs(14,{outer})\", false, input, p, training, inplace)", text);
            Assert.Contains($"ParallelDropout.Dropout(\"Sample.Block.forward at Block.cs(14,{inner})\", true, input, p, training, inplace)", text);
        }

        [Fact]
        public void PermuteAndCatFollowTheShard()
        {
            var source = Samples.Usings + """
                namespace Sample
                {
                    [ParallelModule]
                    public sealed partial class Block : nn.Module<Tensor, Tensor>
                    {
                        [ColumnParallel] private readonly Linear q;
                        [ColumnParallel] private readonly Linear k;
                        [RowParallel] private readonly Linear o;
                        public Block() : base("Block") { q = nn.Linear(8, 8); k = nn.Linear(8, 8); o = nn.Linear(16, 8); RegisterComponents(); }
                        public override Tensor forward(Tensor x)
                        {
                            var heads = q.forward(x).view(2, 3, 4, 2).permute(0, 2, 1, 3);
                            var back = heads.permute(0, 2, 1, 3).reshape(2, 3, 8);
                            var both = torch.cat(new[] { back, k.forward(x) }, 1);
                            return o.forward(torch.cat(new[] { both, both }, -1));
                        }
                    }
                }
                """;
            var diagnostics = GeneratorHarness.Analyze(("Block.cs", source));
            // cat along the sharded last dimension is refused; everything before it is followed.
            var diagnostic = Assert.Single(diagnostics);
            Assert.Equal("MP0014", diagnostic.Id);
            Assert.Contains("cat along the sharded dimension would interleave the ranks' slices", diagnostic.GetMessage());
            Assert.Contains("torch.cat(new[] { both, both }, -1)", diagnostic.GetMessage());
        }

        [Fact]
        public void NestedAndFieldInitializedModulesAreSupported()
        {
            var source = Samples.Usings + """
                namespace Sample
                {
                    public static partial class Outer
                    {
                        [ParallelModule]
                        public partial class Inner : nn.Module<Tensor, Tensor>
                        {
                            [ColumnParallel] private readonly Linear up = nn.Linear(4, 8);
                            [RowParallel] private readonly Linear down = nn.Linear(8, 4);
                            public Inner() : base("Inner") => RegisterComponents();
                            public override Tensor forward(Tensor x) => down.forward(up.forward(x));
                        }
                    }
                }
                """;
            var (result, compilation) = GeneratorHarness.Run(("Inner.cs", source));
            Assert.Empty(result.Diagnostics);
            Assert.Empty(compilation.Where(d => d.Severity >= DiagnosticSeverity.Warning));
            var text = result.GeneratedSources.Single(s => s.HintName.EndsWith(".Partition.g.cs")).SourceText.ToString();
            Assert.Contains("partial class Outer", text);
            Assert.Equal(4, text.Split("InterceptsLocation(1,").Length - 1);
        }
    }
}
