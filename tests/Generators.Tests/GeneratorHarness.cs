using System;
using System.Collections.Generic;
using System.Collections.Immutable;
using System.IO;
using System.Linq;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.Diagnostics;

namespace ModelParallel.Generators.Tests
{
    /// <summary>Compiles sources against TorchSharp and ModelParallel offline and runs the generator over them.</summary>
    internal static class GeneratorHarness
    {
        public static readonly CSharpParseOptions ParseOptions = CSharpParseOptions.Default
            .WithLanguageVersion(LanguageVersion.Preview)
            .WithFeatures(new[] { new KeyValuePair<string, string>("InterceptorsNamespaces", "ModelParallel.Generated") });

        internal static readonly Lazy<ImmutableArray<MetadataReference>> References = new(() =>
        {
            // The running framework's assemblies, so no reference pack is downloaded at test time.
            var paths = ((string)AppContext.GetData("TRUSTED_PLATFORM_ASSEMBLIES")!).Split(Path.PathSeparator).ToList();
            paths.Add(typeof(TorchSharp.torch).Assembly.Location);
            paths.Add(typeof(ParallelModuleAttribute).Assembly.Location);
            paths.Add(typeof(Ranks).Assembly.Location);
            return paths.Distinct().Select(p => (MetadataReference)MetadataReference.CreateFromFile(p)).ToImmutableArray();
        });

        public static CSharpCompilation Compile(params (string Path, string Text)[] sources) =>
            CSharpCompilation.Create("Sample",
                sources.Select(s => CSharpSyntaxTree.ParseText(s.Text, ParseOptions, s.Path)),
                References.Value,
                new CSharpCompilationOptions(OutputKind.DynamicallyLinkedLibrary, nullableContextOptions: NullableContextOptions.Enable));

        public static GeneratorDriver Driver(bool trackSteps = false) =>
            CSharpGeneratorDriver.Create(new[] { new ParallelModuleGenerator().AsSourceGenerator() }, parseOptions: ParseOptions,
                driverOptions: new GeneratorDriverOptions(IncrementalGeneratorOutputKind.None, trackIncrementalGeneratorSteps: trackSteps));

        /// <summary>The analyzer's diagnostics for the sources (the partition rule checks), ordered by position.</summary>
        public static ImmutableArray<Diagnostic> Analyze(params (string Path, string Text)[] sources)
        {
            var analyzers = ImmutableArray.Create<Microsoft.CodeAnalysis.Diagnostics.DiagnosticAnalyzer>(new ParallelModuleAnalyzer());
            var withAnalyzers = Compile(sources).WithAnalyzers(analyzers);
            var all = withAnalyzers.GetAllDiagnosticsAsync().GetAwaiter().GetResult();
            // AD0001 would mean the analyzer threw: surface it as a diagnostic the tests see.
            return all.Where(d => d.Id.StartsWith("MP", StringComparison.Ordinal) || d.Id == "AD0001")
                .OrderBy(d => d.Location.SourceSpan.Start).ToImmutableArray();
        }

        /// <summary>Runs the generator; returns its result and the diagnostics of the compilation with the generated code.</summary>
        public static (GeneratorRunResult Result, ImmutableArray<Diagnostic> Compilation) Run(params (string Path, string Text)[] sources)
        {
            var driver = Driver().RunGeneratorsAndUpdateCompilation(Compile(sources), out var output, out _);
            var result = driver.GetRunResult().Results.Single();
            return (result, output.GetDiagnostics());
        }
    }
}
