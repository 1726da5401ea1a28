using System.Collections.Generic;
using System.Collections.Immutable;
using System.Linq;
using System.Threading;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CodeActions;
using Microsoft.CodeAnalysis.CodeFixes;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.Diagnostics;
using Microsoft.CodeAnalysis.Text;
using ModelParallel.CodeFixes;
using Xunit;

namespace ModelParallel.Generators.Tests
{
    /// <summary>Each code fix turns the diagnosed source into the expected one, and the diagnostic is gone afterwards.</summary>
    [Trait("Category", "Analyzer")]
    public sealed class CodeFixTests
    {
        [Fact]
        public void MP0001_MakesTheClassPartial() => Fix(new MakePartialCodeFix(), "MP0001", """
            [ParallelModule]
            public sealed class Block : nn.Module<Tensor, Tensor>
            {
                [ColumnParallel] private readonly Linear up;
                public Block() : base("Block") { up = nn.Linear(4, 8); RegisterComponents(); }
                public override Tensor forward(Tensor x) => up.forward(x);
            }
            """, """
            [ParallelModule]
            public sealed partial class Block : nn.Module<Tensor, Tensor>
            {
                [ColumnParallel] private readonly Linear up;
                public Block() : base("Block") { up = nn.Linear(4, 8); RegisterComponents(); }
                public override Tensor forward(Tensor x) => up.forward(x);
            }
            """);

        [Fact]
        public void MP0004_SwitchesCallToForward() => Fix(new UseForwardCodeFix(), "MP0004", """
            [ParallelModule]
            public sealed partial class Block : nn.Module<Tensor, Tensor>
            {
                [ColumnParallel] private readonly Linear up;
                public Block() : base("Block") { up = nn.Linear(4, 8); RegisterComponents(); }
                public override Tensor forward(Tensor x) => up.call(x);
            }
            """, """
            [ParallelModule]
            public sealed partial class Block : nn.Module<Tensor, Tensor>
            {
                [ColumnParallel] private readonly Linear up;
                public Block() : base("Block") { up = nn.Linear(4, 8); RegisterComponents(); }
                public override Tensor forward(Tensor x) => up.forward(x);
            }
            """);

        [Fact]
        public void MP0004_TurnsAMethodGroupIntoADirectCall() => Fix(new UseForwardCodeFix(), "MP0004", """
            [ParallelModule]
            public sealed partial class Block : nn.Module<Tensor, Tensor>
            {
                [RowParallel] private readonly Linear down;
                public Block() : base("Block") { down = nn.Linear(8, 4); RegisterComponents(); }
                public override Tensor forward(Tensor x)
                {
                    System.Func<Tensor, Tensor> f = down.forward;
                    return f(x);
                }
            }
            """, """
            [ParallelModule]
            public sealed partial class Block : nn.Module<Tensor, Tensor>
            {
                [RowParallel] private readonly Linear down;
                public Block() : base("Block") { down = nn.Linear(8, 4); RegisterComponents(); }
                public override Tensor forward(Tensor x)
                {
                    System.Func<Tensor, Tensor> f = input => down.forward(input);
                    return f(x);
                }
            }
            """, remaining: "MP0016"); // the lambda's x is replicated: the generator slices it for the RowParallel layer (info)

        [Fact]
        public void MP0015_MakesTheSecondColumnLayerRowParallel() => Fix(new MakeRowParallelCodeFix(), "MP0015", """
            [ParallelModule]
            public sealed partial class Block : nn.Module<Tensor, Tensor>
            {
                [ColumnParallel] private readonly Linear up;
                [ColumnParallel] private readonly Linear down;
                public Block() : base("Block") { up = nn.Linear(4, 8); down = nn.Linear(8, 4); RegisterComponents(); }
                public override Tensor forward(Tensor x) => down.forward(up.forward(x));
            }
            """, """
            [ParallelModule]
            public sealed partial class Block : nn.Module<Tensor, Tensor>
            {
                [ColumnParallel] private readonly Linear up;
                [RowParallel] private readonly Linear down;
                public Block() : base("Block") { up = nn.Linear(4, 8); down = nn.Linear(8, 4); RegisterComponents(); }
                public override Tensor forward(Tensor x) => down.forward(up.forward(x));
            }
            """);

        private static void Fix(CodeFixProvider fix, string id, string before, string after, string? remaining = null)
        {
            string Wrap(string body) => Samples.Usings + "namespace Sample {\n" + body + "\n}\n";
            using var workspace = new AdhocWorkspace();
            var project = workspace.AddProject(ProjectInfo.Create(ProjectId.CreateNewId(), VersionStamp.Default, "Sample", "Sample", LanguageNames.CSharp,
                compilationOptions: new CSharpCompilationOptions(OutputKind.DynamicallyLinkedLibrary, nullableContextOptions: NullableContextOptions.Enable),
                parseOptions: GeneratorHarness.ParseOptions, metadataReferences: GeneratorHarness.References.Value));
            var document = workspace.AddDocument(project.Id, "Block.cs", SourceText.From(Wrap(before)));

            var diagnostic = Assert.Single(Analyze(document), d => d.Id == id);
            var actions = new List<CodeAction>();
            fix.RegisterCodeFixesAsync(new CodeFixContext(document, diagnostic, (action, _) => actions.Add(action), CancellationToken.None)).GetAwaiter().GetResult();
            var operation = Assert.Single(Assert.Single(actions).GetOperationsAsync(CancellationToken.None).GetAwaiter().GetResult().OfType<ApplyChangesOperation>());
            var fixedDocument = operation.ChangedSolution.GetDocument(document.Id)!;
            Assert.Equal(Wrap(after), fixedDocument.GetTextAsync().GetAwaiter().GetResult().ToString());
            var left = Analyze(fixedDocument).Select(d => d.Id).ToList();
            Assert.Equal(remaining is null ? new List<string>() : new List<string> { remaining }, left);
        }

        private static ImmutableArray<Diagnostic> Analyze(Document document)
        {
            var compilation = document.Project.GetCompilationAsync().GetAwaiter().GetResult()!;
            return compilation.WithAnalyzers(ImmutableArray.Create<DiagnosticAnalyzer>(new ParallelModuleAnalyzer()))
                .GetAnalyzerDiagnosticsAsync().GetAwaiter().GetResult();
        }
    }
}
