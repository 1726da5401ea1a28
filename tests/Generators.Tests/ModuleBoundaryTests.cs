using System.Collections.Immutable;
using System.IO;
using System.Linq;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.Diagnostics;
using Microsoft.CodeAnalysis.Text;
using Xunit;

namespace ModelParallel.Generators.Tests
{
    /// <summary>
    /// Placements across module boundaries: a sharded output called from outside any [ParallelModule] (MP0019), and
    /// sub-modules compiled in another assembly, whose output placement comes from the [OutputPlacement] the generator
    /// wrote there.
    /// </summary>
    [Trait("Category", "Generator")]
    public sealed class ModuleBoundaryTests
    {
        private const string Head = """
            [ParallelModule]
            public sealed partial class Head : nn.Module<Tensor, Tensor>
            {
                [ColumnParallel] private readonly Linear proj;
                public Head() : base("Head") { proj = nn.Linear(8, 16); RegisterComponents(); }
                public override Tensor forward(Tensor x) => proj.forward(x);
            }
            """;

        private const string Whole = """
            [ParallelModule]
            public sealed partial class Whole : nn.Module<Tensor, Tensor>
            {
                [ColumnParallel] private readonly Linear up;
                [RowParallel] private readonly Linear down;
                public Whole() : base("Whole") { up = nn.Linear(8, 16); down = nn.Linear(16, 8); RegisterComponents(); }
                public override Tensor forward(Tensor x) => down.forward(up.forward(x));
            }
            """;

        [Fact]
        public void ASubModuleHeldThroughTheBaseTypeIsCheckedAtRunTime()
        {
            var source = Samples.Usings + "namespace Sample {\n" + Head + """
                [ParallelModule]
                public sealed partial class Holder : nn.Module<Tensor, Tensor>
                {
                    private readonly nn.Module<Tensor, Tensor> inner = new Head();
                    public Holder() : base("Holder") { RegisterComponents(); }
                    public override Tensor forward(Tensor x) => inner.forward(x);
                }
                }
                """;
            var (result, compilation) = GeneratorHarness.Run(("Model.cs", source));
            Assert.Empty(result.Diagnostics);
            Assert.Empty(compilation.Where(d => d.Severity >= DiagnosticSeverity.Warning));
            var text = result.GeneratedSources.Single(s => s.HintName == "Sample.Holder.Partition.g.cs").SourceText.ToString();
            // The walk cannot see which module 'inner' holds: the call checks at run time that it returns a whole value.
            Assert.Contains("global::ModelParallel.Layers.ModuleCalls.Whole(\"Sample.Holder.inner at Model.cs(", text);
            Assert.Contains("this global::TorchSharp.torch.nn.Module<global::TorchSharp.torch.Tensor, global::TorchSharp.torch.Tensor> self", text);
        }

        [Fact]
        public void ASubModuleHeldThroughAnInterfaceIsCheckedAtRunTime()
        {
            var source = Samples.Usings + """
                namespace Sample
                {
                public interface IStep { Tensor forward(Tensor x); }

                [ParallelModule]
                public sealed partial class Step : nn.Module<Tensor, Tensor>, IStep
                {
                    [ColumnParallel] private readonly Linear proj;
                    public Step() : base("Step") { proj = nn.Linear(8, 16); RegisterComponents(); }
                    public override Tensor forward(Tensor x) => proj.forward(x);
                }

                [ParallelModule]
                public sealed partial class Holder : nn.Module<Tensor, Tensor>
                {
                    private readonly IStep inner = new Step();
                    public Holder() : base("Holder") { RegisterComponents(); }
                    public override Tensor forward(Tensor x) => inner.forward(x);
                }
                }
                """;
            var (result, compilation) = GeneratorHarness.Run(("Model.cs", source));
            Assert.Empty(result.Diagnostics);
            Assert.Empty(compilation.Where(d => d.Severity >= DiagnosticSeverity.Warning));
            var text = result.GeneratedSources.Single(s => s.HintName == "Sample.Holder.Partition.g.cs").SourceText.ToString();
            Assert.Contains("global::ModelParallel.Layers.ModuleCalls.Whole(\"Sample.Holder.inner at Model.cs(", text);
            Assert.Contains("this global::Sample.IStep self", text);
        }

        [Fact]
        public void MP0019_AShardedOutputCalledFromPlainCodeIsRefusedAtTheCall()
        {
            var (source, span) = Marked(Head + """
                public static class Training
                {
                    public static Tensor Loss(Head head, Tensor x, Tensor targets) => nn.functional.cross_entropy([|head.forward(x)|], targets);
                }
                """);
            var diagnostic = Assert.Single(GeneratorHarness.Analyze(("Model.cs", source)));
            Assert.Equal("MP0019", diagnostic.Id);
            Assert.Equal(DiagnosticSeverity.Error, diagnostic.Severity);
            Assert.Equal(span, diagnostic.Location.SourceSpan);
            Assert.Contains("'Head.forward' returns a value placed S(-1) over tp", diagnostic.GetMessage());
        }

        [Fact]
        public void MP0019_CallThroughCallAndInAPlainWrapperModuleAreRefusedToo()
        {
            var (source, _) = Marked(Head + """
                public sealed class Wrapper : nn.Module<Tensor, Tensor>
                {
                    private readonly Head head = new();
                    public Wrapper() : base("Wrapper") { RegisterComponents(); }
                    public override Tensor forward(Tensor x) => [|head.call(x)|].softmax(-1);
                }
                """);
            Assert.Equal("MP0019", Assert.Single(GeneratorHarness.Analyze(("Model.cs", source))).Id);
        }

        [Fact]
        public void MP0019_AConditionalCallIsRefusedToo()
        {
            // The analyzer finds these calls by the name written at the call (forward or call): here a member binding.
            var (source, span) = Marked(Head + """
                public static class Training
                {
                    public static Tensor? Logits(Head? head, Tensor x) => head?[|.forward(x)|];
                }
                """);
            var diagnostic = Assert.Single(GeneratorHarness.Analyze(("Model.cs", source)));
            Assert.Equal(("MP0019", span), (diagnostic.Id, diagnostic.Location.SourceSpan));
        }

        [Fact]
        public void MP0021_ACallThroughTheBaseTypeOrATypeParameterThatMayReachAShardedOutputIsAWarning()
        {
            var (source, spans) = MarkedAll(Head + """
                public static class Training
                {
                    public static Tensor Loss(Head head, Tensor x, Tensor targets)
                    {
                        nn.Module<Tensor, Tensor> m = head;
                        return nn.functional.cross_entropy([|m.forward(x)|], targets);
                    }
                    public static Tensor Run<T>(T m, Tensor x) where T : nn.Module<Tensor, Tensor> => [|m.forward(x)|];
                }
                """);
            var diagnostics = GeneratorHarness.Analyze(("Model.cs", source));
            Assert.Equal(spans.Select(s => ("MP0021", s)), diagnostics.Select(d => (d.Id, d.Location.SourceSpan)));
            Assert.All(diagnostics, d => Assert.Equal(DiagnosticSeverity.Warning, d.Severity));
            Assert.StartsWith("'m.forward' is called through 'nn.Module<Tensor, Tensor>', which may hold 'Head': 'Head.forward' returns a value placed S(-1) over tp", diagnostics[0].GetMessage());
            Assert.StartsWith("'m.forward' is called through 'T', which may hold 'Head'", diagnostics[1].GetMessage());
        }

        [Fact]
        public void ACallThroughTheBaseTypeIsAcceptedWhenNoModuleItMayReachIsShardedOrItsOutputGoesToTheVocabularyLoss()
        {
            // Only whole outputs in this compilation: nothing a base-typed call may reach is sharded.
            var wholeOnly = Samples.Usings + "namespace Sample {\n" + Whole + """
                public sealed class Plain : nn.Module<Tensor, Tensor>
                {
                    public Plain() : base("Plain") { }
                    public override Tensor forward(Tensor x) => x;
                }
                public static class Training
                {
                    public static Tensor Run(Whole whole, Plain plain, Tensor x)
                    {
                        nn.Module<Tensor, Tensor> a = whole;
                        return a.forward(plain.forward(x));
                    }
                }
                }
                """;
            Assert.Empty(GeneratorHarness.Analyze(("Model.cs", wholeOnly)));
            // A sharded output in the compilation, reached through the base type only by the vocabulary-parallel loss.
            var intoLoss = Samples.Usings + "using ModelParallel.Layers;\nnamespace Sample {\n" + Head + """
                public static class Training
                {
                    public static Tensor Loss(nn.Module<Tensor, Tensor> m, Tensor x, Tensor targets) => new VocabParallelLoss(16).Compute(m.forward(x), targets);
                }
                }
                """;
            Assert.Empty(GeneratorHarness.Analyze(("Model.cs", intoLoss)));
        }

        [Fact]
        public void AShardedOutputGivenOnlyToTheVocabularyParallelLossIsAccepted()
        {
            var source = Samples.Usings + "using ModelParallel.Layers;\nnamespace Sample {\n" + Head + """
                public static class Training
                {
                    public static Tensor Direct(Head head, Tensor x, Tensor targets) => new VocabParallelLoss(16).Compute(head.forward(x), targets);
                    public static Tensor ThroughALocal(Head head, Tensor x, Tensor targets)
                    {
                        var logits = head.forward(x);
                        return new VocabParallelLoss(16).Compute(logits, targets);
                    }
                }
                }
                """;
            Assert.Empty(GeneratorHarness.Analyze(("Model.cs", source)));
        }

        [Fact]
        public void ALocalAlsoUsedElsewhereIsRefused()
        {
            var (source, span) = Marked(Head + """
                public static class Training
                {
                    public static Tensor Predict(Head head, Tensor x, ModelParallel.Layers.VocabParallelLoss loss, Tensor targets)
                    {
                        var logits = [|head.forward(x)|];
                        _ = loss.Compute(logits, targets);
                        return logits.argmax(-1);
                    }
                }
                """);
            var diagnostic = Assert.Single(GeneratorHarness.Analyze(("Model.cs", source)));
            Assert.Equal(("MP0019", span), (diagnostic.Id, diagnostic.Location.SourceSpan));
        }

        [Fact]
        public void AWholeOutputCalledFromPlainCodeIsAccepted()
        {
            var source = Samples.Usings + "namespace Sample {\n" + Whole + """
                public static class Training
                {
                    public static Tensor Run(Whole model, Tensor x) => model.forward(x).softmax(-1);
                }
                }
                """;
            Assert.Empty(GeneratorHarness.Analyze(("Model.cs", source)));
        }

        [Fact]
        public void TheGeneratedCodeRecordsTheOutputPlacementForOtherAssemblies()
        {
            var (result, _) = GeneratorHarness.Run(("Model.cs", Samples.Usings + "namespace Sample {\n" + Head + Whole + "}\n"));
            var head = result.GeneratedSources.Single(s => s.HintName == "Sample.Head.Partition.g.cs").SourceText.ToString();
            var whole = result.GeneratedSources.Single(s => s.HintName == "Sample.Whole.Partition.g.cs").SourceText.ToString();
            Assert.Contains("[global::ModelParallel.OutputPlacement(global::ModelParallel.PlacementKind.Shard, -1)]", head);
            Assert.Contains("[global::ModelParallel.OutputPlacement(global::ModelParallel.PlacementKind.Replicate, 0)]", whole);
        }

        [Fact]
        public void ASubModuleFromAnotherAssemblyKeepsItsShardAcrossTheBoundary()
        {
            var library = Library(Head, generate: true);
            var parent = Samples.Usings + """
                namespace Consumer
                {
                    [ParallelModule]
                    public sealed partial class Parent : nn.Module<Tensor, Tensor>
                    {
                        private readonly Sample.Head head = new();
                        [RowParallel] private readonly Linear down;
                        public Parent() : base("Parent") { down = nn.Linear(16, 8); RegisterComponents(); }
                        public override Tensor forward(Tensor x) => down.forward(head.forward(x));
                    }
                }
                """;
            Assert.Empty(AnalyzeWith(library, parent));
            var generated = GenerateWith(library, parent);
            // The S(-1) output feeds the RowParallel layer as it is: no slice of a value taken for whole.
            Assert.Contains("RowForward(", generated);
            Assert.DoesNotContain("RowForwardSliced", generated);
        }

        [Fact]
        public void ASubModuleFromAnotherAssemblyWithoutARecordedPlacementIsRefused()
        {
            var library = Library(Head, generate: false);
            var (parent, span) = Marked("""
                [ParallelModule]
                public sealed partial class Parent : nn.Module<Tensor, Tensor>
                {
                    private readonly Sample.Head head = new();
                    [RowParallel] private readonly Linear down;
                    public Parent() : base("Parent") { down = nn.Linear(16, 8); RegisterComponents(); }
                    public override Tensor forward(Tensor x) => down.forward([|head.forward(x)|]);
                }
                """, "Consumer");
            var diagnostic = Assert.Single(AnalyzeWith(library, parent));
            Assert.Equal(("MP0014", span), (diagnostic.Id, diagnostic.Location.SourceSpan));
            Assert.Contains("comes from another assembly whose generated code carries no [OutputPlacement]", diagnostic.GetMessage());
        }

        [Fact]
        public void AColumnHeadTiedToAVocabularyParallelEmbeddingIsAccepted()
        {
            var source = Samples.Usings + """
                namespace Sample
                {
                    [ParallelModule]
                    public sealed partial class Lm : nn.Module<Tensor, Tensor>
                    {
                        [VocabParallel] private readonly Embedding embed;
                        [ColumnParallel] private readonly Linear head;
                        public Lm() : base("Lm") { embed = nn.Embedding(64, 16); head = nn.Linear(16, 64, hasBias: false); head.weight = embed.weight!; RegisterComponents(); }
                        public override Tensor forward(Tensor ids) => head.forward(embed.forward(ids));
                    }
                }
                """;
            Assert.Empty(GeneratorHarness.Analyze(("Lm.cs", source)));
        }

        [Fact]
        public void ATieAcrossPipelineStagesIsOneDiagnosticAtTheEmbeddingsWeight()
        {
            var (source, span) = Marked("""
                [ParallelModule]
                public sealed partial class Lm : nn.Module<Tensor, Tensor>
                {
                    [FirstStage, VocabParallel] private readonly Embedding embed;
                    [PipelineStages] private readonly ModuleList<Head> blocks;
                    [LastStage, ColumnParallel] private readonly Linear head;
                    public Lm() : base("Lm")
                    {
                        embed = nn.Embedding(64, 8);
                        blocks = nn.ModuleList(System.Linq.Enumerable.Range(0, 2).Select(_ => new Head()).ToArray());
                        head = nn.Linear(8, 64, hasBias: false);
                        head.weight = [|embed.weight|]!;
                        RegisterComponents();
                    }
                    public override Tensor forward(Tensor ids)
                    {
                        var x = embed.forward(ids);
                        foreach (var block in blocks) x = block.forward(x);
                        return head.forward(x);
                    }
                }
                """ + Whole.Replace("Whole", "Head"));
            var withLinq = source.Replace("using static TorchSharp.torch;", "using static TorchSharp.torch;\nusing System.Linq;");
            var diagnostic = Assert.Single(GeneratorHarness.Analyze(("Lm.cs", withLinq)));
            Assert.Equal("MP0018", diagnostic.Id);
            Assert.Equal("embed.weight", withLinq.Substring(diagnostic.Location.SourceSpan.Start, diagnostic.Location.SourceSpan.Length));
            Assert.Equal(span.Length, diagnostic.Location.SourceSpan.Length);
        }

        private static (string Source, TextSpan Span) Marked(string markup, string ns = "Sample")
        {
            var prefix = Samples.Usings + $"namespace {ns} {{\n";
            int start = prefix.Length + markup.IndexOf("[|", System.StringComparison.Ordinal);
            int end = prefix.Length + markup.IndexOf("|]", System.StringComparison.Ordinal) - 2;
            return (prefix + markup.Replace("[|", "").Replace("|]", "") + "\n}\n", new TextSpan(start, end - start));
        }

        /// <summary>Like <see cref="Marked"/>, for every [| |] in the markup, in order.</summary>
        private static (string Source, TextSpan[] Spans) MarkedAll(string markup)
        {
            var text = Samples.Usings + "namespace Sample {\n" + markup + "\n}\n";
            var spans = new System.Collections.Generic.List<TextSpan>();
            while (text.IndexOf("[|", System.StringComparison.Ordinal) is var start and >= 0)
            {
                text = text.Remove(start, 2);
                int end = text.IndexOf("|]", System.StringComparison.Ordinal);
                text = text.Remove(end, 2);
                spans.Add(new TextSpan(start, end - start));
            }
            return (text, spans.ToArray());
        }

        /// <summary>The module compiled as its own assembly (with or without the generator), as a metadata reference.</summary>
        private static MetadataReference Library(string module, bool generate)
        {
            var compilation = GeneratorHarness.Compile(("Head.cs", Samples.Usings + "namespace Sample {\n" + module + "}\n")).WithAssemblyName("HeadLibrary");
            Compilation built = compilation;
            if (generate) GeneratorHarness.Driver().RunGeneratorsAndUpdateCompilation(compilation, out built, out _);
            using var image = new MemoryStream();
            var emitted = built.Emit(image);
            Assert.True(emitted.Success, string.Join("\n", emitted.Diagnostics));
            return MetadataReference.CreateFromImage(image.ToArray());
        }

        private static System.Collections.Immutable.ImmutableArray<Diagnostic> AnalyzeWith(MetadataReference library, string source)
        {
            var compilation = GeneratorHarness.Compile(("Parent.cs", source)).AddReferences(library);
            var analyzers = System.Collections.Immutable.ImmutableArray.Create<Microsoft.CodeAnalysis.Diagnostics.DiagnosticAnalyzer>(new ParallelModuleAnalyzer());
            return compilation.WithAnalyzers(analyzers).GetAllDiagnosticsAsync().GetAwaiter().GetResult()
                .Where(d => d.Id.StartsWith("MP", System.StringComparison.Ordinal) || d.Id == "AD0001" || d.Severity == DiagnosticSeverity.Error).ToImmutableArray();
        }

        private static string GenerateWith(MetadataReference library, string source)
        {
            var compilation = GeneratorHarness.Compile(("Parent.cs", source)).AddReferences(library);
            var driver = GeneratorHarness.Driver().RunGeneratorsAndUpdateCompilation(compilation, out var output, out _);
            Assert.Empty(output.GetDiagnostics().Where(d => d.Severity == DiagnosticSeverity.Error));
            return string.Concat(driver.GetRunResult().Results.Single().GeneratedSources.Select(s => s.SourceText.ToString()));
        }
    }
}
