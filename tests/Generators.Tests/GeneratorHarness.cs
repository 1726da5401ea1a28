using System;
using System.Collections.Generic;
using System.Collections.Immutable;
using System.IO;
using System.Linq;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;

namespace ModelParallel.Generators.Tests
{
    /// <summary>Compiles sources against TorchSharp and ModelParallel offline and runs the generator over them.</summary>
    internal static class GeneratorHarness
    {
        public static readonly CSharpParseOptions ParseOptions = CSharpParseOptions.Default
            .WithLanguageVersion(LanguageVersion.Preview)
            .WithFeatures(new[] { new KeyValuePair<string, string>("InterceptorsNamespaces", "ModelParallel.Generated") });

        private static readonly Lazy<ImmutableArray<MetadataReference>> References = new(() =>
        {
            // The running framework's assemblies, so no reference pack is downloaded at test time.
            var paths = ((string)AppContext.GetData("TRUSTED_PLATFORM_ASSEMBLIES")!).Split(Path.PathSeparator).ToList();
            paths.Add(typeof(TorchSharp.torch).Assembly.Location);
            paths.Add(typeof(ParallelModuleAttribute).Assembly.Location);
            paths.Add(typeof(Parallel).Assembly.Location);
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

        /// <summary>Runs the generator; returns its result and the diagnostics of the compilation with the generated code.</summary>
        public static (GeneratorRunResult Result, ImmutableArray<Diagnostic> Compilation) Run(params (string Path, string Text)[] sources)
        {
            var driver = Driver().RunGeneratorsAndUpdateCompilation(Compile(sources), out var output, out _);
            var result = driver.GetRunResult().Results.Single();
            return (result, output.GetDiagnostics());
        }
    }
}
