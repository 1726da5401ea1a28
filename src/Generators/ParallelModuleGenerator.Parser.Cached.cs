using System;
using System.Collections.Generic;
using System.Collections.Immutable;
using System.Linq;
using System.Threading;
using System.Threading.Tasks;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.CSharp.Syntax;
using ModelParallel.Generators.Caching;
using ModelParallel.Generators.Model;

namespace ModelParallel.Generators
{
    public sealed partial class ParallelModuleGenerator
    {
        internal static partial class Parser
        {
            /// <summary>
            /// The generator's read of a class declaration that carries attributes: its spec when one of them is this
            /// declaration's [ParallelModule], else null. Served from <see cref="SpecCache"/> when an earlier compilation
            /// provably read the same, before anything is bound.
            /// </summary>
            public static ModuleSpec? Read(ClassDeclarationSyntax node, Compilation compilation, CancellationToken cancellationToken)
            {
                if (SpecCache.TryFind(node.SyntaxTree, node.SpanStart, false, compilation, out var known)) return known;
                var type = SemanticModels.For(compilation, node.SyntaxTree).GetDeclaredSymbol(node, cancellationToken);
                // Only the declaration that carries [ParallelModule] is read; the class's other parts give null.
                bool marked = type is not null && ParallelModuleOf(type, compilation.GetTypeByMetadataName(ParallelModuleAttribute)) is
                    { ApplicationSyntaxReference: { } at } && at.SyntaxTree == node.SyntaxTree && node.Span.Contains(at.Span);
                ModuleSpec? spec = null;
                IEnumerable<SyntaxTree> read = Array.Empty<SyntaxTree>();
                if (marked)
                {
                    if (ReadsOnThisThread is { } reads) lock (reads) reads.Add(type!.Name);
                    spec = Parse(type!, compilation, cancellationToken, forDiagnostics: false, out read);
                }
                SpecCache.Store(node.SyntaxTree, node.SpanStart, false, compilation, spec, read);
                return spec;
            }

            /// <summary>
            /// Every attributed class declaration of one compilation, read by <see cref="Read"/>: those the cache cannot
            /// serve are read in parallel when the compilation allows a concurrent build (as the compiler binds method
            /// bodies), one after another otherwise. The specs come out in declaration order, whatever the threads did.
            /// </summary>
            public static ImmutableArray<ModuleSpec> ReadAll(ImmutableArray<(ClassDeclarationSyntax Node, Compilation Compilation)> declarations, CancellationToken cancellationToken)
            {
                var specs = new ModuleSpec?[declarations.Length];
                var reads = ReadsOnThisThread;
                void ReadOne(int i)
                {
                    var previous = ReadsOnThisThread;
                    ReadsOnThisThread = reads;
                    try { specs[i] = Read(declarations[i].Node, declarations[i].Compilation, cancellationToken); }
                    finally { ReadsOnThisThread = previous; }
                }
                if (declarations.Length > 1 && declarations[0].Compilation.Options.ConcurrentBuild)
                    Parallel.For(0, declarations.Length, new ParallelOptions { CancellationToken = cancellationToken }, ReadOne);
                else
                    for (int i = 0; i < declarations.Length; i++) ReadOne(i);
                return specs.Where(s => s is not null).Select(s => s!).ToImmutableArray();
            }

            /// <summary>
            /// Reads a [ParallelModule] class for its diagnostics alone (the analyzer), or reuses what an earlier
            /// compilation read of it when <see cref="SpecCache"/> proves it the same. Never throws.
            /// </summary>
            public static ModuleSpec ParseForDiagnostics(INamedTypeSymbol type, Compilation compilation, CancellationToken cancellationToken)
            {
                if (type.DeclaringSyntaxReferences.FirstOrDefault() is not { } declaration)
                    return Parse(type, compilation, cancellationToken, forDiagnostics: true, out _);
                if (SpecCache.TryFind(declaration.SyntaxTree, declaration.Span.Start, true, compilation, out var known) && known is not null) return known;
                var spec = Parse(type, compilation, cancellationToken, forDiagnostics: true, out var read);
                SpecCache.Store(declaration.SyntaxTree, declaration.Span.Start, true, compilation, spec, read);
                return spec;
            }

            /// <summary>
            /// Test seam: when set, the names of the classes <see cref="Read"/> read on this thread, or on the threads
            /// <see cref="ReadAll"/> started from it, not served by the cache.
            /// </summary>
            [ThreadStatic] internal static List<string>? ReadsOnThisThread;
        }
    }
}
