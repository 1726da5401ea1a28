using System.Collections.Immutable;
using System.Linq;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Xunit;

namespace ModelParallel.Generators.Tests
{
    /// <summary>
    /// Every optimizer.step() call is routed through the commit point and every zero_grad() of an optimizer or a module
    /// through its check; nothing else called step is.
    /// </summary>
    [Trait("Category", "Generator")]
    public sealed class OptimizerStepTests
    {
        private const string Loop = Samples.Usings + """
            namespace Sample
            {
                public static class Training
                {
                    public static void Steps(nn.Module<Tensor, Tensor> model, optim.Optimizer any, optim.lr_scheduler.LRScheduler schedule)
                    {
                        var adam = optim.Adam(model.parameters());
                        adam.zero_grad();
                        adam.step();
                        any.step(() => torch.zeros(1));
                        model.zero_grad();
                        schedule.step(); // a learning-rate scheduler's step changes no parameter: not intercepted
                        System.Func<System.Func<Tensor>, Tensor> group = adam.step; // not a call: nothing to intercept
                    }
                }
            }
            """;

        [Fact]
        public void EveryOptimizerStepAndZeroGradCallIsInterceptedAndTheGeneratedFileMatchesTheApprovedOne()
        {
            var (sources, diagnostics) = Run(GeneratorHarness.References.Value);
            Assert.Empty(diagnostics.Where(d => d.Severity >= DiagnosticSeverity.Warning));
            var source = Assert.Single(sources);
            Assert.Equal("ModelParallel.OptimizerSteps.g.cs", source.HintName);
            var text = source.SourceText.ToString();
            Assert.Equal(4, text.Split("[global::System.Runtime.CompilerServices.InterceptsLocation(").Length - 1);
            Assert.Contains("global::ModelParallel.StepCommit.ZeroGrad(self, \"Loop.cs(12,13)\")", text);
            Assert.Contains("global::ModelParallel.StepCommit.Step(self, closure, \"Loop.cs(13,13)\")", text);
            Assert.Contains("global::ModelParallel.StepCommit.Step(self, closure, \"Loop.cs(14,13)\")", text);
            Assert.Contains("ZeroGrad_3(this global::TorchSharp.torch.nn.Module self, bool set_to_none)", text);
            Assert.Contains("global::ModelParallel.StepCommit.ZeroGrad(self, set_to_none, \"Loop.cs(15,13)\")", text);
            Snapshot.Match("OptimizerSteps", text);
        }

        [Fact]
        public void AnOverrideWithANullableClosureGetsAnInterceptorOfTheSameNullability()
        {
            const string Subclass = Samples.Usings + """
                namespace Sample
                {
                    public sealed class Quiet : TorchSharp.Modules.Adam
                    {
                        public Quiet(System.Collections.Generic.IEnumerable<TorchSharp.Modules.Parameter> parameters) : base(parameters) { }
                        public override Tensor step(System.Func<Tensor>? closure = null) => base.step(closure);
                    }

                    public static class Training
                    {
                        public static void Step(Quiet quiet) => quiet.step();
                    }
                }
                """;
            var (sources, diagnostics) = Run(GeneratorHarness.References.Value, Subclass);
            Assert.Empty(diagnostics.Where(d => d.Severity >= DiagnosticSeverity.Warning));
            Assert.Contains("this global::Sample.Quiet self, global::System.Func<global::TorchSharp.torch.Tensor>? closure)", Assert.Single(sources).SourceText.ToString());
        }

        [Fact]
        public void AProjectWithoutTheRuntimeGetsNoInterceptors()
        {
            var withoutRuntime = GeneratorHarness.References.Value
                .Where(r => !(r.Display ?? "").EndsWith("ModelParallel.Runtime.dll", System.StringComparison.Ordinal)).ToImmutableArray();
            var (sources, _) = Run(withoutRuntime);
            Assert.Empty(sources);
        }

        private static (ImmutableArray<GeneratedSourceResult> Sources, ImmutableArray<Diagnostic> Diagnostics) Run(ImmutableArray<MetadataReference> references, string source = Loop)
        {
            var compilation = CSharpCompilation.Create("Sample",
                new[] { CSharpSyntaxTree.ParseText(source, GeneratorHarness.ParseOptions, "Loop.cs") }, references,
                new CSharpCompilationOptions(OutputKind.DynamicallyLinkedLibrary, nullableContextOptions: NullableContextOptions.Enable));
            var driver = CSharpGeneratorDriver.Create(new[] { new OptimizerStepGenerator().AsSourceGenerator() }, parseOptions: GeneratorHarness.ParseOptions)
                .RunGeneratorsAndUpdateCompilation(compilation, out var output, out _);
            return (driver.GetRunResult().Results.Single().GeneratedSources, output.GetDiagnostics());
        }
    }
}
