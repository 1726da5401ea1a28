using System.Collections.Generic;
using System.Linq;
using System.Threading;
using Microsoft.CodeAnalysis;
using ModelParallel.Generators.Model;

namespace ModelParallel.Generators
{
    public sealed partial class ParallelModuleGenerator
    {
        internal static partial class Parser
        {
            internal const string OutputPlacementAttribute = "ModelParallel.OutputPlacementAttribute";

            /// <summary>
            /// Follows the tp placement of every tensor value through forward (Placements/PlacementWalk.cs and the rules of
            /// each family beside it) and reports what cannot be partitioned. Returns the call sites the emitter must treat specially.
            /// </summary>
            private static PlacementFacts AnalyzePlacements(INamedTypeSymbol type, Dictionary<string, LayerSpec> layers, int[] sizes, SemanticModels models,
                List<DiagnosticInfo> diagnostics, CancellationToken cancellationToken)
            {
                if (ForwardBody(type, models, m => m.Parameters.Length >= 1, cancellationToken) is not { Body: { } block } forward) return new PlacementFacts();
                bool declared = SequenceParallelDeclared(type, models.Known.ParallelModule);
                var scattered = new HashSet<SyntaxNode>();
                int reported = diagnostics.Count;
                // A sequence-parallel consumer reached with a whole value asks for the call that produced it to split it along
                // the sequence; the walk then starts again with that call's output S(-2), so every use of it sees that
                // placement. Each round adds at least one call, so this ends.
                while (true)
                {
                    var facts = new PlacementFacts();
                    var walk = new PlacementWalk(type, layers, sizes, facts, diagnostics, models, new SequenceParallelism(declared, scattered), cancellationToken);
                    if (declared && forward.Model.GetDeclaredSymbol(forward.Declaration, cancellationToken) is IMethodSymbol method)
                        walk.EnterSequenceSharded(method);
                    walk.Statement(block);
                    if (!facts.Demands.Any(d => !scattered.Contains(d))) return facts;
                    scattered.UnionWith(facts.Demands);
                    diagnostics.RemoveRange(reported, diagnostics.Count - reported);
                }
            }

            /// <summary>The class's [ParallelModule] attribute (<paramref name="attribute"/> is its symbol in the compilation), if it has one.</summary>
            internal static AttributeData? ParallelModuleOf(INamedTypeSymbol type, INamedTypeSymbol? attribute) =>
                attribute is null ? null : type.GetAttributes().FirstOrDefault(a => SymbolEqualityComparer.Default.Equals(a.AttributeClass, attribute));

            /// <summary>[ParallelModule(SequenceParallel = true)] on the class (<paramref name="attribute"/>: the attribute's symbol).</summary>
            internal static bool SequenceParallelDeclared(INamedTypeSymbol type, INamedTypeSymbol? attribute) =>
                ParallelModuleOf(type, attribute)?.NamedArguments.Any(a => a.Key == "SequenceParallel" && a.Value.Value is true) == true;

            /// <summary>What a [ParallelModule] sub-module's forward returns: one placement, several (Mixed), or not known (null).</summary>
            private readonly record struct ModuleOutput(ValuePlacement? Placement, bool Mixed = false);

            /// <summary>[ParallelModule] types whose forward is being walked on this thread: a module that contains itself stops the recursion.</summary>
            [System.ThreadStatic] private static HashSet<ISymbol>? walking;

            /// <summary>
            /// The placement a [ParallelModule] sub-module's forward returns for a whole input: from a walk of its own forward
            /// when its source is in this compilation (its diagnostics are its own to report), else from the
            /// [OutputPlacement] its generated code carries. A parent must not take a sharded output for a whole one.
            /// </summary>
            private static ModuleOutput ReturnedPlacement(INamedTypeSymbol module, SemanticModels models, CancellationToken cancellationToken)
            {
                if (module.DeclaringSyntaxReferences.Length == 0) return FromMetadata(module, models.Known);
                if (models.Returned.TryGetValue(module, out var known)) return known;
                walking ??= new HashSet<ISymbol>(SymbolEqualityComparer.Default);
                if (!walking.Add(module)) return new ModuleOutput(null);
                try
                {
                    var ignored = new List<DiagnosticInfo>();
                    var facts = AnalyzePlacements(module, ReadLayers(module, models.Known, ignored), DeclaredSizes(module, models.Known), models, ignored, cancellationToken);
                    var returned = facts.Values.Where(v => v.IsReturn).Select(v => v.Placement).Distinct().ToList();
                    return models.Returned[module] = returned.Count == 1 ? new ModuleOutput(returned[0]) : new ModuleOutput(null, Mixed: returned.Count > 1);
                }
                finally
                {
                    walking.Remove(module);
                }
            }

            /// <summary>
            /// For MP0019: the placement text when a [ParallelModule]'s forward returns a shard (or differently placed values),
            /// so that code outside any [ParallelModule] must not take its output for a whole value; null when it returns R or
            /// nothing the walk can place.
            /// </summary>
            internal static string? ShardedOutput(INamedTypeSymbol module, Compilation compilation, CancellationToken cancellationToken)
            {
                var output = ReturnedPlacement(module, new SemanticModels(compilation), cancellationToken);
                return output.Mixed ? "differently on different returns" : output.Placement is { Kind: ValueKind.Shard } shard ? shard.ToString() : null;
            }

            /// <summary>The [OutputPlacement(kind, dim)] the generator put on a module compiled in another assembly.</summary>
            private static ModuleOutput FromMetadata(INamedTypeSymbol module, KnownTypes known)
            {
                var attribute = module.GetAttributes().FirstOrDefault(a => known.Is(a.AttributeClass, OutputPlacementAttribute));
                if (attribute is not { ConstructorArguments: { Length: 2 } arguments } || arguments[0].Value is not int kind || arguments[1].Value is not int dim)
                    return new ModuleOutput(null);
                // ModelParallel.PlacementKind: Replicate 0, Shard 1, Partial 2.
                return kind switch
                {
                    0 => new ModuleOutput(ValuePlacement.Replicate),
                    1 => new ModuleOutput(ValuePlacement.Shard(dim)),
                    _ => new ModuleOutput(null),
                };
            }
        }
    }
}
