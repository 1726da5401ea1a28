using System;
using System.Collections.Immutable;
using System.Linq;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.Diagnostics;
using ModelParallel.Generators.Model;

namespace ModelParallel.Generators
{
    /// <summary>
    /// Reports every partition rule check of a [ParallelModule] class (MP0001-MP0016) as an analyzer diagnostic:
    /// at its exact source location, so the IDE shows it as you type, #pragma and .editorconfig can configure it,
    /// and code fixes (ModelParallel.CodeFixes) can repair it. It reads the class with the same parser as the
    /// generator, which reports only its own internal failures (MP0099) and emits nothing for a class in error.
    /// </summary>
    [DiagnosticAnalyzer(LanguageNames.CSharp)]
    public sealed class ParallelModuleAnalyzer : DiagnosticAnalyzer
    {
        /// <inheritdoc/>
        public override ImmutableArray<DiagnosticDescriptor> SupportedDiagnostics { get; } = DiagnosticDescriptors.All;

        /// <inheritdoc/>
        public override void Initialize(AnalysisContext context)
        {
            context.ConfigureGeneratedCodeAnalysis(GeneratedCodeAnalysisFlags.None);
            context.EnableConcurrentExecution();
            context.RegisterCompilationStartAction(start =>
            {
                // Nothing to check in a compilation that cannot name the attribute.
                if (start.Compilation.GetTypeByMetadataName(ParallelModuleGenerator.ParallelModuleAttribute) is null) return;
                var pages = DiagnosticHelpLinks.Directory(start.Options.AnalyzerConfigOptionsProvider);
                start.RegisterSymbolAction(symbol => Analyze(symbol, pages), SymbolKind.NamedType);
            });
        }

        private static void Analyze(SymbolAnalysisContext context, string? pages)
        {
            var type = (INamedTypeSymbol)context.Symbol;
            if (!type.GetAttributes().Any(a => a.AttributeClass?.ToDisplayString() == ParallelModuleGenerator.ParallelModuleAttribute)) return;
            var module = ParallelModuleGenerator.Parser.Parse(type, context.Compilation, context.CancellationToken);
            foreach (var diagnostic in module.Diagnostics)
            {
                if (diagnostic.Id == DiagnosticDescriptors.InternalErrorId) continue; // the generator reports its own failures
                context.ReportDiagnostic(ToDiagnostic(diagnostic, context.Compilation, pages));
            }
        }

        /// <summary>The diagnostic at a location in the compilation's own syntax tree (needed for suppression and fixes).</summary>
        private static Diagnostic ToDiagnostic(DiagnosticInfo info, Compilation compilation, string? pages)
        {
            var descriptor = DiagnosticHelpLinks.For(DiagnosticDescriptors.ById(info.Id), pages);
            var args = info.Arguments.Cast<object>().ToArray();
            var tree = info.Location is { } at ? compilation.SyntaxTrees.FirstOrDefault(t => t.FilePath == at.FilePath) : null;
            var location = tree is not null ? Location.Create(tree, info.Location!.Span) : info.Location?.ToLocation();
            return Diagnostic.Create(descriptor, location, args);
        }
    }
}
