using System.Linq;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.Text;
using Xunit;

namespace ModelParallel.Generators.Tests
{
    /// <summary>Each diagnostic at its exact span, marked in the source with [| and |].</summary>
    [Trait("Category", "Analyzer")]
    public sealed class DiagnosticTests
    {
        [Fact]
        public void MP0001_NonPartialClass() => Expect("MP0001", """
            [ParallelModule]
            public sealed class [|Block|] : nn.Module<Tensor, Tensor>
            {
                [ColumnParallel] private readonly Linear up;
                public Block() : base("Block") { up = nn.Linear(4, 8); RegisterComponents(); }
                public override Tensor forward(Tensor x) => up.forward(x);
            }
            """, "'Block' must be declared partial");

        [Fact]
        public void MP0001_NonPartialContainingClass() => Expect("MP0001", """
            public static class [|Outer|]
            {
                [ParallelModule]
                public sealed partial class Block : nn.Module<Tensor, Tensor>
                {
                    public Block() : base("Block") { }
                    public override Tensor forward(Tensor x) => x;
                }
            }
            """, "'Outer' must be declared partial");

        [Fact]
        public void MP0002_AttributeOnAFieldThatIsNotALinear() => Expect("MP0002", """
            [ParallelModule]
            public sealed partial class Block : nn.Module<Tensor, Tensor>
            {
                [[|ColumnParallel|]] private readonly LayerNorm norm;
                public Block() : base("Block") { norm = nn.LayerNorm(4); RegisterComponents(); }
                public override Tensor forward(Tensor x) => norm.forward(x);
            }
            """, "[ColumnParallel] on 'norm' of type 'TorchSharp.Modules.LayerNorm'");

        [Fact]
        public void MP0003_TwoPlacementsOnOneLayer() => Expect("MP0003", """
            [ParallelModule]
            public sealed partial class Block : nn.Module<Tensor, Tensor>
            {
                [ColumnParallel, [|RowParallel|]] private readonly Linear up;
                public Block() : base("Block") { up = nn.Linear(4, 8); RegisterComponents(); }
                public override Tensor forward(Tensor x) => up.forward(x);
            }
            """, "'up' has more than one placement attribute (ColumnParallel, RowParallel)");

        [Fact]
        public void MP0010_AVocabularyThatADeclaredSizeDoesNotDivide() => Expect("MP0010", """
            [ParallelModule(TensorParallelSizes = new[] { 1, 2, 4 })]
            public sealed partial class Block : nn.Module<Tensor, Tensor>
            {
                [VocabParallel] private readonly Embedding embed;
                public Block() : base("Block") { embed = nn.Embedding([|50257|], 16); RegisterComponents(); }
                public override Tensor forward(Tensor ids) => embed.forward(ids);
            }
            """, "num_embeddings");

        [Fact]
        public void MP0017_ABranchOnTheRankAroundALayer() => Expect("MP0017", """
            [ParallelModule]
            public sealed partial class Block : nn.Module<Tensor, Tensor>
            {
                [ColumnParallel] private readonly Linear up;
                [RowParallel] private readonly Linear down;
                public Block() : base("Block") { up = nn.Linear(4, 8); down = nn.Linear(8, 4); RegisterComponents(); }
                public override Tensor forward(Tensor x) => [|RankContext.Current!.Rank|] == 0 ? down.forward(up.forward(x)) : x;
            }
            """, "'RankContext.Current!.Rank' reads the rank context inside [ParallelModule] 'Block'");

        [Fact]
        public void MP0017_TheRankContextUnderACall() => Expect("MP0017", """
            [ParallelModule]
            public sealed partial class Block : nn.Module<Tensor, Tensor>
            {
                [ColumnParallel] private readonly Linear up;
                [RowParallel] private readonly Linear down;
                public Block() : base("Block") { up = nn.Linear(4, 8); down = nn.Linear(8, 4); RegisterComponents(); }
                public override Tensor forward(Tensor x)
                {
                    if ([|RankContext.Current|]?.Axis(MeshAxis.Tensor).Size == 2) x = x * 2;
                    return down.forward(up.forward(x));
                }
            }
            """, "'RankContext.Current' reads the rank context");

        [Fact]
        public void MP0018_AFunctionalLinearOverAPartitionedWeight() => Expect("MP0018", """
            [ParallelModule]
            public sealed partial class Block : nn.Module<Tensor, Tensor>
            {
                [ColumnParallel] private readonly Linear up;
                public Block() : base("Block") { up = nn.Linear(4, 8); RegisterComponents(); }
                public override Tensor forward(Tensor x) => nn.functional.linear(x, [|up.weight|]!);
            }
            """, "'up.weight' of ColumnParallel layer 'up' is used directly: each rank holds only its shard of it");

        [Fact]
        public void MP0018_AWeightTiedToAVocabularyParallelEmbedding() => Expect("MP0018", """
            [ParallelModule]
            public sealed partial class Block : nn.Module<Tensor, Tensor>
            {
                [VocabParallel] private readonly Embedding embed;
                private readonly Linear head;
                public Block() : base("Block")
                {
                    embed = nn.Embedding(64, 16);
                    head = nn.Linear(16, 64, hasBias: false);
                    head.weight = [|embed.weight|];
                    RegisterComponents();
                }
                public override Tensor forward(Tensor ids) => head.forward(embed.forward(ids));
            }
            """, "'embed.weight' of VocabParallel layer 'embed' is used directly");

        [Fact]
        public void MP0014_APositiveSoftmaxDimensionOnAValueOfUnknownRank() => ExpectInForward("MP0014", """
            return down.forward([|nn.functional.softmax(h, 2)|]);
            """, "dimension 2 is counted from the start, but the value's number of dimensions is not known here");

        [Fact]
        public void MP0014_APositiveReductionDimensionOnAValueOfUnknownRank() => ExpectInForward("MP0014", """
            return down.forward(h - [|h.sum(1, keepdim: true)|]);
            """, "dimension 1 is counted from the start");

        [Fact]
        public void MP0014_APositiveChunkDimensionOnAValueOfUnknownRank() => ExpectInForward("MP0014", """
            var parts = [|h.chunk(2, 1)|];
            return down.forward(parts[0]);
            """, "dimension 1 is counted from the start");

        [Fact]
        public void MP0014_TheSizeOfTheShardedDimensionReadFromTheEnd() => ExpectInForward("MP0014", """
            long features = [|h.shape[^1]|];
            return down.forward(h) * features;
            """, "reads the size of the sharded dimension: on each rank it is the local shard's");

        [Fact]
        public void MP0014_ASizeReadWithAnIndexTheWalkCannotPlace() => ExpectInForward("MP0014", """
            int k = (int)x.shape[0];
            long size = [|h.shape[k]|];
            return down.forward(h) * size;
            """, "reads a size whose dimension the walk cannot place");

        [Fact]
        public void MP0014_SizeOfTheShardedDimension() => ExpectInForward("MP0014", """
            long features = [|h.size(-1)|];
            return down.forward(h) * features;
            """, "reads the size of the sharded dimension");

        [Fact]
        public void MP0014_APositiveCatDimensionOnValuesOfUnknownRank() => Expect("MP0014", """
            [ParallelModule]
            public sealed partial class Block : nn.Module<Tensor, Tensor>
            {
                [ColumnParallel] private readonly Linear up;
                [RowParallel] private readonly Linear down;
                public Block() : base("Block") { up = nn.Linear(4, 8); down = nn.Linear(16, 4); RegisterComponents(); }
                public override Tensor forward(Tensor x)
                {
                    var h = up.forward(x);
                    return down.forward([|torch.cat(new[] { h, h }, 1)|]);
                }
            }
            """, "dimension 1 is counted from the start");

        [Fact]
        public void MP0014_ASubModulesShardedOutputTakenForAWholeOne()
        {
            var source = WithHead(4, """
                [ParallelModule]
                public sealed partial class Block : nn.Module<Tensor, Tensor>
                {
                    private readonly Head head;
                    public Block() : base("Block") { head = new Head(); RegisterComponents(); }
                    public override Tensor forward(Tensor x) => x + head.forward(x);
                }
                """);
            var diagnostic = Assert.Single(GeneratorHarness.Analyze(("Block.cs", source)));
            Assert.Equal("MP0014", diagnostic.Id);
            Assert.Contains("'x + head.forward(x)': on a value placed S(-1)", diagnostic.GetMessage());
            Assert.Equal("x + head.forward(x)", source.Substring(diagnostic.Location.SourceSpan.Start, diagnostic.Location.SourceSpan.Length));
        }

        [Fact]
        public void ASubModulesShardedOutputFeedsARowParallelLayerWithNoResharding()
        {
            var source = WithHead(8, """
                [ParallelModule]
                public sealed partial class Block : nn.Module<Tensor, Tensor>
                {
                    private readonly Head head;
                    [RowParallel] private readonly Linear down;
                    public Block() : base("Block") { head = new Head(); down = nn.Linear(8, 4); RegisterComponents(); }
                    public override Tensor forward(Tensor x) => x + down.forward(head.forward(x));
                }
                """);
            // Before the boundary was crossed, head's output was taken for R: a slice was inserted before down (MP0016).
            Assert.Empty(GeneratorHarness.Analyze(("Block.cs", source)));
            var (result, _) = GeneratorHarness.Run(("Block.cs", source));
            var block = result.GeneratedSources.Single(g => g.HintName == "Sample.Block.Partition.g.cs").SourceText.ToString();
            Assert.Contains("ParallelLinear.RowForward(\"Sample.Block.down\"", block);
            Assert.DoesNotContain("RowForwardSliced", block);
        }

        [Fact]
        public void ASizeReadOfAnUnshardedDimensionCountedFromTheEndIsAllowed()
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
                        {
                            var h = up.forward(x);
                            long rows = h.shape[^2];
                            return down.forward(h) * rows;
                        }
                    }
                }
                """;
            Assert.Empty(GeneratorHarness.Analyze(("Block.cs", source)));
        }

        [Fact]
        public void MP0004_CallThroughModuleCall() => Expect("MP0004", """
            [ParallelModule]
            public sealed partial class Block : nn.Module<Tensor, Tensor>
            {
                [ColumnParallel] private readonly Linear up;
                public Block() : base("Block") { up = nn.Linear(4, 8); RegisterComponents(); }
                public override Tensor forward(Tensor x) => [|up.call(x)|];
            }
            """, "'up' is invoked through 'call' here");

        [Fact]
        public void MP0004_APartitionedLayerInASequential() => Expect("MP0004", """
            [ParallelModule]
            public sealed partial class Block : nn.Module<Tensor, Tensor>
            {
                [ColumnParallel] private readonly Linear up;
                private readonly Sequential stack;
                public Block() : base("Block")
                {
                    up = nn.Linear(4, 8);
                    stack = nn.Sequential(("up", [|up|]), ("act", nn.ReLU()));
                    RegisterComponents();
                }
                public override Tensor forward(Tensor x) => stack.forward(x);
            }
            """, "'up' is passed on as a value (into a container, a helper or a variable)");

        [Fact]
        public void MP0004_APartitionedLayerThroughALocal() => Expect("MP0004", """
            [ParallelModule]
            public sealed partial class Block : nn.Module<Tensor, Tensor>
            {
                [RowParallel] private readonly Linear down;
                public Block() : base("Block") { down = nn.Linear(8, 4); RegisterComponents(); }
                public override Tensor forward(Tensor x)
                {
                    var layer = [|this.down|];
                    return layer.forward(x);
                }
            }
            """, "'down' is passed on as a value");

        [Fact]
        public void MP0004_MethodGroup() => Expect("MP0004", """
            [ParallelModule]
            public sealed partial class Block : nn.Module<Tensor, Tensor>
            {
                [RowParallel] private readonly Linear down;
                public Block() : base("Block") { down = nn.Linear(8, 4); RegisterComponents(); }
                public override Tensor forward(Tensor x)
                {
                    System.Func<Tensor, Tensor> f = [|down.forward|];
                    return f(x);
                }
            }
            """, "'down' is used as a method group here");

        [Fact]
        public void MP0005_PartitionedLayerNotBuiltWithLinearFactory() => Expect("MP0005", """
            [ParallelModule]
            public sealed partial class Block : nn.Module<Tensor, Tensor>
            {
                [ColumnParallel] private readonly Linear [|up|];
                public Block(Linear given) : base("Block") { up = given; RegisterComponents(); }
                public override Tensor forward(Tensor x) => up.forward(x);
            }
            """, "'up' is [ColumnParallel] but is never assigned torch.nn.Linear");

        [Fact]
        public void MP0006_PipelineStagesOverBlocksThatAreNotParallelModules() => Expect("MP0006", """
            using System.Linq;
            public sealed class Plain : nn.Module<Tensor, Tensor>
            {
                public Plain() : base("Plain") { }
                public override Tensor forward(Tensor x) => x;
            }
            [ParallelModule]
            public sealed partial class Block : nn.Module<Tensor, Tensor>
            {
                [[|PipelineStages|]] private readonly ModuleList<Plain> blocks;
                public Block() : base("Block") { blocks = nn.ModuleList(Enumerable.Range(0, 2).Select(_ => new Plain()).ToArray()); RegisterComponents(); }
                public override Tensor forward(Tensor x) { foreach (var b in blocks) x = b.forward(x); return x; }
            }
            """, "its block type 'Sample.Plain' is not a [ParallelModule] class");

        [Fact]
        public void MP0007_PipelineBlocksBuiltInALoop() => Expect("MP0007", """
            [ParallelModule]
            public sealed partial class Inner : nn.Module<Tensor, Tensor>
            {
                public Inner() : base("Inner") { }
                public override Tensor forward(Tensor x) => x;
            }
            [ParallelModule]
            public sealed partial class Block : nn.Module<Tensor, Tensor>
            {
                [PipelineStages] private readonly ModuleList<Inner> [|blocks|] = new();
                public Block() : base("Block") { for (int i = 0; i < 2; i++) blocks.Add(new Inner()); RegisterComponents(); }
                public override Tensor forward(Tensor x) { foreach (var b in blocks) x = b.forward(x); return x; }
            }
            """, "'blocks' is [PipelineStages] but is never assigned nn.ModuleList(Enumerable.Range(0, n).Select(i => new Block(...)).ToArray())");

        [Fact]
        public void MP0008_ForwardComputesOutsideThePipelineParts() => Expect("MP0008", """
            using System.Linq;
            [ParallelModule]
            public sealed partial class Inner : nn.Module<Tensor, Tensor>
            {
                public Inner() : base("Inner") { }
                public override Tensor forward(Tensor x) => x;
            }
            [ParallelModule]
            public sealed partial class Block : nn.Module<Tensor, Tensor>
            {
                [PipelineStages] private readonly ModuleList<Inner> blocks;
                public Block() : base("Block") { blocks = nn.ModuleList(Enumerable.Range(0, 2).Select(_ => new Inner()).ToArray()); RegisterComponents(); }
                public override Tensor forward(Tensor x)
                {
                    x = [|x * 2|];
                    foreach (var b in blocks) x = b.forward(x);
                    return x;
                }
            }
            """, "'x * 2' in 'Block.forward' would run on every pipeline stage");

        [Fact]
        public void MP0008_LastStageLayerBeforeTheBlocks() => Expect("MP0008", """
            using System.Linq;
            [ParallelModule]
            public sealed partial class Inner : nn.Module<Tensor, Tensor>
            {
                public Inner() : base("Inner") { }
                public override Tensor forward(Tensor x) => x;
            }
            [ParallelModule]
            public sealed partial class Block : nn.Module<Tensor, Tensor>
            {
                [PipelineStages] private readonly ModuleList<Inner> blocks;
                [LastStage] private readonly LayerNorm norm;
                public Block() : base("Block") { blocks = nn.ModuleList(Enumerable.Range(0, 2).Select(_ => new Inner()).ToArray()); norm = nn.LayerNorm(4); RegisterComponents(); }
                public override Tensor forward(Tensor x)
                {
                    x = [|norm.forward(x)|];
                    foreach (var b in blocks) x = b.forward(x);
                    return x;
                }
            }
            """, "runs a [LastStage] layer before the blocks");

        [Fact]
        public void MP0009_StageMarkerWithoutPipelineStages() => Expect("MP0009", """
            [ParallelModule]
            public sealed partial class Block : nn.Module<Tensor, Tensor>
            {
                [[|FirstStage|]] private readonly Linear up;
                public Block() : base("Block") { up = nn.Linear(4, 8); RegisterComponents(); }
                public override Tensor forward(Tensor x) => up.forward(x);
            }
            """, "[FirstStage] on 'up': 'Block' has no [PipelineStages] list");

        [Fact]
        public void MP0010_ConstantFeaturesNotDivisibleByADeclaredSize() => Expect("MP0010", """
            [ParallelModule(TensorParallelSizes = new[] { 1, 2, 4 })]
            public sealed partial class Block : nn.Module<Tensor, Tensor>
            {
                [ColumnParallel] private readonly Linear up;
                public Block() : base("Block") { up = nn.Linear(4, [|6|]); RegisterComponents(); }
                public override Tensor forward(Tensor x) => up.forward(x);
            }
            """, "out_features = 6 of ColumnParallel 'up' is not divisible by tp = 4, one of the TensorParallelSizes declared on 'Block'");

        [Fact]
        public void MP0010_ConstantHeadCountNotDivisibleByADeclaredSize() => Expect("MP0010", """
            [ParallelModule(TensorParallelSizes = new[] { 2 })]
            public sealed partial class Block : nn.Module<Tensor, Tensor>
            {
                [ColumnParallel] private readonly Linear qkv;
                [RowParallel] private readonly Linear projection;
                public Block() : base("Block") { qkv = nn.Linear(12, 12); projection = nn.Linear(12, 12); RegisterComponents(); }
                public override Tensor forward(Tensor x)
                {
                    var heads = qkv.forward(x).view(2, 5, [|3|], 4);
                    return projection.forward(heads.view(2, 5, 12));
                }
            }
            """, "dimension 2 of the view = 3 of 'qkv.forward(x).view(2, 5, 3, 4)' (it carries the tp shard, e.g. the heads) is not divisible by tp = 2");

        [Fact]
        public void MP0011_SoftmaxOverTheShardedDimension() => Expect("MP0011", """
            [ParallelModule]
            public sealed partial class Block : nn.Module<Tensor, Tensor>
            {
                [ColumnParallel] private readonly Linear up;
                [RowParallel] private readonly Linear down;
                public Block() : base("Block") { up = nn.Linear(4, 8); down = nn.Linear(8, 4); RegisterComponents(); }
                public override Tensor forward(Tensor x)
                {
                    var h = up.forward(x);
                    return down.forward([|h.softmax(-1)|]);
                }
            }
            """, "'h.softmax(-1)' takes a softmax over dimension -1, which is sharded over tp here (the value is S(-1))");

        [Fact]
        public void MP0011_LayerNormOfAShardedValue() => Expect("MP0011", """
            [ParallelModule]
            public sealed partial class Block : nn.Module<Tensor, Tensor>
            {
                [ColumnParallel] private readonly Linear up;
                [RowParallel] private readonly Linear down;
                private readonly LayerNorm norm;
                public Block() : base("Block") { up = nn.Linear(4, 8); down = nn.Linear(8, 4); norm = nn.LayerNorm(8); RegisterComponents(); }
                public override Tensor forward(Tensor x) => down.forward([|norm.forward(up.forward(x))|]);
            }
            """, "normalizes over dimension -1, which is sharded over tp here");

        [Fact]
        public void MP0012_GeluOfAPartialSum() => Expect("MP0012", """
            [ParallelModule]
            public sealed partial class Block : nn.Module<Tensor, Tensor>
            {
                [ColumnParallel] private readonly Linear up;
                [RowParallel(ReduceOutput = false)] private readonly Linear down;
                [Replicated] private readonly Linear head;
                public Block() : base("Block") { up = nn.Linear(4, 8); down = nn.Linear(8, 4); head = nn.Linear(4, 4); RegisterComponents(); }
                public override Tensor forward(Tensor x) => head.forward([|nn.functional.gelu(down.forward(up.forward(x)))|]);
            }
            """, "applies gelu to a partial sum (P, from RowParallel 'down' with ReduceOutput = false): gelu of the summands is not gelu of the sum");

        [Fact]
        public void MP0012_PartialSumPlusAWholeValue() => Expect("MP0012", """
            [ParallelModule]
            public sealed partial class Block : nn.Module<Tensor, Tensor>
            {
                [ColumnParallel] private readonly Linear up;
                [RowParallel(ReduceOutput = false)] private readonly Linear down;
                [Replicated] private readonly Linear head;
                public Block() : base("Block") { up = nn.Linear(4, 8); down = nn.Linear(8, 4); head = nn.Linear(4, 4); RegisterComponents(); }
                public override Tensor forward(Tensor x) => head.forward([|x + down.forward(up.forward(x))|]);
            }
            """, "adds a whole (R) value to a partial sum");

        [Fact]
        public void MP0013_PartialSumReturnedFromForward() => Expect("MP0013", """
            [ParallelModule]
            public sealed partial class Block : nn.Module<Tensor, Tensor>
            {
                [ColumnParallel] private readonly Linear up;
                [RowParallel(ReduceOutput = false)] private readonly Linear down;
                public Block() : base("Block") { up = nn.Linear(4, 8); down = nn.Linear(8, 4); RegisterComponents(); }
                public override Tensor forward(Tensor x) => [|down.forward(up.forward(x))|];
            }
            """, "returns a partial sum (P, from RowParallel 'down' with ReduceOutput = false) from forward");

        [Fact]
        public void MP0014_ShardedPlusReplicated() => Expect("MP0014", """
            [ParallelModule]
            public sealed partial class Block : nn.Module<Tensor, Tensor>
            {
                [ColumnParallel] private readonly Linear up;
                [RowParallel] private readonly Linear down;
                public Block() : base("Block") { up = nn.Linear(4, 4); down = nn.Linear(4, 4); RegisterComponents(); }
                public override Tensor forward(Tensor x)
                {
                    var h = up.forward(x);
                    return down.forward([|h + x|]);
                }
            }
            """, "'h + x': on a value placed S(-1): Add of a value placed S(-1) and a whole (R) value whose number of dimensions the walk does not know, so it may reach the sharded dimension -1");

        [Fact]
        public void MP0014_DropoutModuleInsteadOfTheFunctionalForm() => Expect("MP0014", """
            [ParallelModule]
            public sealed partial class Block : nn.Module<Tensor, Tensor>
            {
                [ColumnParallel] private readonly Linear up;
                [RowParallel] private readonly Linear down;
                private readonly Dropout drop;
                public Block() : base("Block") { up = nn.Linear(4, 8); down = nn.Linear(8, 4); drop = nn.Dropout(0.1); RegisterComponents(); }
                public override Tensor forward(Tensor x) => [|drop.forward(down.forward(up.forward(x)))|];
            }
            """, "a 'Dropout' module draws from torch's global generator, which differs between ranks");

        [Fact]
        public void MP0015_TwoColumnParallelLayersInARow() => Expect("MP0015", """
            [ParallelModule]
            public sealed partial class Block : nn.Module<Tensor, Tensor>
            {
                [ColumnParallel] private readonly Linear up;
                [ColumnParallel] private readonly Linear down;
                public Block() : base("Block") { up = nn.Linear(4, 8); down = nn.Linear(8, 4); RegisterComponents(); }
                public override Tensor forward(Tensor x) => [|down.forward(up.forward(x))|];
            }
            """, "'down' is ColumnParallel but its input comes sharded from ColumnParallel 'up': an all-gather", DiagnosticSeverity.Warning);

        [Fact]
        public void MP0016_RowParallelOnAReplicatedInputGetsALocalSlice() => Expect("MP0016", """
            [ParallelModule]
            public sealed partial class Block : nn.Module<Tensor, Tensor>
            {
                [RowParallel] private readonly Linear down;
                public Block() : base("Block") { down = nn.Linear(8, 4); RegisterComponents(); }
                public override Tensor forward(Tensor x) => [|down.forward(x)|];
            }
            """, "a local slice (R -> S(-1)) inserted for the replicated input of RowParallel 'down'", DiagnosticSeverity.Info);

        /// <summary>A sub-module <c>Head</c> (ColumnParallel 4 → <paramref name="headOut"/>, returning S(-1)) beside <paramref name="block"/>.</summary>
        private static string WithHead(int headOut, string block) => Samples.Usings + $$"""
            namespace Sample
            {
                [ParallelModule]
                public sealed partial class Head : nn.Module<Tensor, Tensor>
                {
                    [ColumnParallel] private readonly Linear up;
                    public Head() : base("Head") { up = nn.Linear(4, {{headOut}}); RegisterComponents(); }
                    public override Tensor forward(Tensor x) => up.forward(x);
                }

            {{block}}
            }
            """;

        /// <summary>
        /// <see cref="Expect"/> on the usual block (ColumnParallel <c>up</c> 4 → 8, RowParallel <c>down</c> 8 → 4) whose
        /// forward starts with <c>var h = up.forward(x);</c> (h is S(-1), of unknown rank) and goes on with <paramref name="body"/>.
        /// </summary>
        private static void ExpectInForward(string id, string body, string messagePart) => Expect(id, $$"""
            [ParallelModule]
            public sealed partial class Block : nn.Module<Tensor, Tensor>
            {
                [ColumnParallel] private readonly Linear up;
                [RowParallel] private readonly Linear down;
                public Block() : base("Block") { up = nn.Linear(4, 8); down = nn.Linear(8, 4); RegisterComponents(); }
                public override Tensor forward(Tensor x)
                {
                    var h = up.forward(x);
                    {{body}}
                }
            }
            """, messagePart);

        private static void Expect(string id, string markup, string messagePart, DiagnosticSeverity severity = DiagnosticSeverity.Error)
        {
            int start = markup.IndexOf("[|", System.StringComparison.Ordinal);
            int end = markup.IndexOf("|]", System.StringComparison.Ordinal) - 2;
            var source = Samples.Usings + "namespace Sample {\n" + markup.Replace("[|", "").Replace("|]", "") + "\n}\n";
            int offset = Samples.Usings.Length + "namespace Sample {\n".Length;

            var diagnostic = Assert.Single(GeneratorHarness.Analyze(("Block.cs", source)));
            Assert.Equal(id, diagnostic.Id);
            Assert.Equal(severity, diagnostic.Severity);
            Assert.Equal(new TextSpan(offset + start, end - start), diagnostic.Location.SourceSpan);
            Assert.True(diagnostic.Location.IsInSource, "the diagnostic is in the compilation's own syntax tree (so #pragma and code fixes apply)");
            Assert.Equal("Block.cs", diagnostic.Location.GetLineSpan().Path);
            Assert.Contains(messagePart, diagnostic.GetMessage());

            var (result, _) = GeneratorHarness.Run(("Block.cs", source));
            Assert.Null(result.Exception);
            Assert.Empty(result.Diagnostics); // rule checks come from the analyzer only
            // A class with an error gets no partition (other, valid classes of the sample do); warnings and infos do not stop it.
            if (severity == DiagnosticSeverity.Error)
                Assert.DoesNotContain(result.GeneratedSources, s => s.HintName == "Sample.Block.Partition.g.cs");
            else
                Assert.Contains(result.GeneratedSources, s => s.HintName == "Sample.Block.Partition.g.cs");
        }
    }
}
