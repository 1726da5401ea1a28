using System;
using System.Collections.Concurrent;
using System.Collections.Immutable;
using System.Linq;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.CSharp.Syntax;
using Microsoft.CodeAnalysis.Diagnostics;
using Microsoft.CodeAnalysis.Operations;
using ModelParallel.Generators.Model;

namespace ModelParallel.Generators
{
    /// <summary>
    /// Reports every partition rule check of a [ParallelModule] class (MP0001-MP0018), and MP0019 / MP0020 at calls of one from outside any, as an analyzer diagnostic:
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
                if (start.Compilation.GetTypeByMetadataName(ParallelModuleGenerator.ParallelModuleAttribute) is not { } attribute) return;
                var pages = DiagnosticHelpLinks.Directory(start.Options.AnalyzerConfigOptionsProvider);
                start.RegisterSymbolAction(symbol => Analyze(symbol, attribute, pages), SymbolKind.NamedType);
                var loss = start.Compilation.GetTypeByMetadataName("ModelParallel.Layers.VocabParallelLoss");
                var outputs = new ConcurrentDictionary<INamedTypeSymbol, string?>(SymbolEqualityComparer.Default);
                var modules = new Lazy<ImmutableArray<INamedTypeSymbol>>(() => SourceModules(start.Compilation, attribute));
                // A syntax action, not an operation action: the analyzer driver would otherwise build the operation tree of
                // every method body of the project. Only calls named forward or call are bound, mostly in bodies the
                // class reads above have bound already.
                start.RegisterSyntaxNodeAction(node => CheckModuleCall(node, attribute, loss, outputs, modules, pages), SyntaxKind.InvocationExpression);
            });
        }

        /// <summary>
        /// MP0019 / MP0020: <c>forward</c> or <c>call</c>, from code outside any [ParallelModule] (inside one, the placement
        /// walk carries the shard on), of a [ParallelModule] whose output is sharded or that is sequence-parallel; MP0021 when
        /// the call goes through a type that may hold one of this compilation's such modules.
        /// </summary>
        private static void CheckModuleCall(SyntaxNodeAnalysisContext context, INamedTypeSymbol attribute, INamedTypeSymbol? loss,
            ConcurrentDictionary<INamedTypeSymbol, string?> outputs, Lazy<ImmutableArray<INamedTypeSymbol>> modules, string? pages)
        {
            var call = (InvocationExpressionSyntax)context.Node;
            var written = call.Expression switch
            {
                MemberAccessExpressionSyntax access => access.Name,
                MemberBindingExpressionSyntax binding => binding.Name,
                SimpleNameSyntax simple => simple,
                _ => null,
            };
            // A method named forward or call is invoked by that name (an instance method has no alias).
            if (written?.Identifier.ValueText is not ("forward" or "call")) return;
            if (context.SemanticModel.GetOperation(call, context.CancellationToken) is not IInvocationOperation invocation
                || invocation.TargetMethod.Name is not ("forward" or "call")) return;
            var receiver = invocation.Instance;
            while (receiver is IConversionOperation conversion) receiver = conversion.Operand;
            if (receiver?.Type is not { } held) return;
            for (var t = context.ContainingSymbol?.ContainingType; t is not null; t = t.ContainingType)
                if (IsParallelModule(t, attribute)) return;
            if (held is INamedTypeSymbol named && IsParallelModule(named, attribute))
            {
                if (ParallelModuleGenerator.Parser.SequenceParallelDeclared(named, attribute))
                {
                    context.ReportDiagnostic(Diagnostic.Create(DiagnosticHelpLinks.For(DiagnosticDescriptors.SequenceInput, pages), invocation.Syntax.GetLocation(), named.Name));
                    return;
                }
                if (OnlyIntoVocabularyLoss(invocation, loss)) return;
                if (Sharded(named) is not { } output) return;
                context.ReportDiagnostic(Diagnostic.Create(DiagnosticHelpLinks.For(DiagnosticDescriptors.ShardedResult, pages), invocation.Syntax.GetLocation(),
                    $"{named.Name}.{invocation.TargetMethod.Name}", output,
                    "give it to VocabParallelLoss (Compute, or PipelineExecutor with one), which takes logits sharded on the vocabulary, or end its forward with a layer that returns a whole value"));
                return;
            }
            // Through a base type, an interface, an unsealed class or a type parameter the call may reach a [ParallelModule] of
            // this compilation that it cannot be checked against: a warning naming the first such module.
            if (held.IsSealed || held.IsValueType) return;
            bool intoLoss = OnlyIntoVocabularyLoss(invocation, loss); // a fact of the call, not of the module it may reach
            foreach (var module in modules.Value.Where(m => MayHold(held, m, context.Compilation)))
            {
                string? why = ParallelModuleGenerator.Parser.SequenceParallelDeclared(module, attribute)
                    ? $"'{module.Name}' is sequence-parallel, its forward takes the stream split along the sequence, and this code passes it whole"
                    : intoLoss ? null
                    : Sharded(module) is { } output ? $"'{module.Name}.{invocation.TargetMethod.Name}' returns a value placed {output} over tp, and this code would take one rank's slice for the whole"
                    : null;
                if (why is null) continue;
                context.ReportDiagnostic(Diagnostic.Create(DiagnosticHelpLinks.For(DiagnosticDescriptors.MayReachPartition, pages), invocation.Syntax.GetLocation(),
                    call.Expression.ToString(), held.ToMinimalDisplayString(context.SemanticModel, call.SpanStart), module.Name, why));
                return;
            }

            string? Sharded(INamedTypeSymbol module) =>
                outputs.GetOrAdd(module, m => ParallelModuleGenerator.Parser.ShardedOutput(m, context.Compilation, context.CancellationToken));
        }

        /// <summary>Whether a value of static type <paramref name="held"/> may be a <paramref name="module"/> (for a type parameter: within its constraints).</summary>
        private static bool MayHold(ITypeSymbol held, INamedTypeSymbol module, Compilation compilation) => held is ITypeParameterSymbol parameter
            ? !parameter.HasValueTypeConstraint && parameter.ConstraintTypes.All(c => compilation.HasImplicitConversion(module, c))
            : compilation.HasImplicitConversion(module, held);

        /// <summary>The [ParallelModule] classes declared in this compilation's source (a call through a base type may reach them).</summary>
        private static ImmutableArray<INamedTypeSymbol> SourceModules(Compilation compilation, INamedTypeSymbol attribute)
        {
            var found = ImmutableArray.CreateBuilder<INamedTypeSymbol>();
            var pending = new System.Collections.Generic.Stack<INamespaceOrTypeSymbol>();
            pending.Push(compilation.Assembly.GlobalNamespace);
            while (pending.Count > 0)
            {
                foreach (var member in pending.Pop().GetMembers())
                {
                    if (member is INamespaceSymbol ns) pending.Push(ns);
                    else if (member is INamedTypeSymbol type)
                    {
                        if (type.TypeKind == TypeKind.Class && IsParallelModule(type, attribute)) found.Add(type);
                        pending.Push(type);
                    }
                }
            }
            return found.ToImmutable();
        }

        /// <summary>
        /// The output goes only to VocabParallelLoss (Compute, Whole), which takes logits sharded on the vocabulary:
        /// directly as an argument, or through a local whose every use is such an argument.
        /// </summary>
        private static bool OnlyIntoVocabularyLoss(IInvocationOperation invocation, INamedTypeSymbol? loss)
        {
            bool IntoLoss(IOperation use)
            {
                var parent = use.Parent;
                while (parent is IConversionOperation) parent = parent.Parent;
                return parent is IArgumentOperation { Parent: IInvocationOperation call }
                    && loss is not null && SymbolEqualityComparer.Default.Equals(call.TargetMethod.ContainingType, loss);
            }
            if (IntoLoss(invocation)) return true;
            var parent = invocation.Parent;
            while (parent is IConversionOperation) parent = parent.Parent;
            if (parent is not IVariableInitializerOperation { Parent: IVariableDeclaratorOperation declarator }) return false;
            var root = declarator;
            IOperation top = root;
            while (top.Parent is not null) top = top.Parent;
            var uses = top.Descendants().OfType<ILocalReferenceOperation>().Where(r => SymbolEqualityComparer.Default.Equals(r.Local, declarator.Symbol)).ToList();
            return uses.Count > 0 && uses.All(IntoLoss);
        }

        private static bool IsParallelModule(INamedTypeSymbol type, INamedTypeSymbol attribute) =>
            type.GetAttributes().Any(a => SymbolEqualityComparer.Default.Equals(a.AttributeClass, attribute));

        private static void Analyze(SymbolAnalysisContext context, INamedTypeSymbol attribute, string? pages)
        {
            var type = (INamedTypeSymbol)context.Symbol;
            if (!IsParallelModule(type, attribute)) return;
            var module = ParallelModuleGenerator.Parser.ParseForDiagnostics(type, context.Compilation, context.CancellationToken);
            // A class in error gets no partition, so the reshardings it would have inserted (MP0016) are not news.
            bool refused = module.Diagnostics.Any(d => DiagnosticDescriptors.IsError(d.Id));
            foreach (var diagnostic in module.Diagnostics)
            {
                if (diagnostic.Id == DiagnosticDescriptors.InternalErrorId) continue; // the generator reports its own failures
                if (refused && diagnostic.Id == DiagnosticDescriptors.ReshardInsertedId) continue;
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
