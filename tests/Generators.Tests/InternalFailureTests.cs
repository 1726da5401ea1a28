using System;
using System.Linq;
using Microsoft.CodeAnalysis;
using Xunit;

namespace ModelParallel.Generators.Tests
{
    /// <summary>An internal failure of the generator is reported as MP0099 on the class, never as a crash (AD0001/CS8785) or a silent skip.</summary>
    [Trait("Category", "Analyzer")]
    public sealed class InternalFailureTests
    {
        [Fact]
        public void MP0099_AFailureWhileReadingAClassIsADiagnosticNamingIt()
        {
            var source = Samples.Usings + """
                namespace Sample
                {
                    [ParallelModule]
                    public sealed partial class ExplodesInTheParser : nn.Module<Tensor, Tensor>
                    {
                        [ColumnParallel] private readonly Linear up;
                        public ExplodesInTheParser() : base("x") { up = nn.Linear(4, 8); RegisterComponents(); }
                        public override Tensor forward(Tensor x) => up.forward(x);
                    }
                }
                """;
            ParallelModuleGenerator.Parser.FailureInjection = type =>
            {
                if (type.Name == "ExplodesInTheParser") throw new InvalidOperationException("injected for the test");
            };
            try
            {
                var (result, compilation) = GeneratorHarness.Run(("Explodes.cs", source));
                Assert.Null(result.Exception);
                var diagnostic = Assert.Single(result.Diagnostics);
                Assert.Equal("MP0099", diagnostic.Id);
                Assert.Equal(DiagnosticSeverity.Error, diagnostic.Severity);
                Assert.Contains("The ModelParallel generator failed on 'ExplodesInTheParser': InvalidOperationException: injected for the test", diagnostic.GetMessage());
                Assert.Empty(result.GeneratedSources);
                Assert.DoesNotContain(compilation, d => d.Id is "CS8785" or "AD0001");
                // The analyzer does not repeat it (the generator owns its own failures) and does not crash either.
                Assert.Empty(GeneratorHarness.Analyze(("Explodes.cs", source)));
            }
            finally
            {
                ParallelModuleGenerator.Parser.FailureInjection = null;
            }
        }
    }
}
