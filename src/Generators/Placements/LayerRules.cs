using System.Linq;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.Operations;
using ModelParallel.Generators.Model;

namespace ModelParallel.Generators
{
    public sealed partial class ParallelModuleGenerator
    {
        internal static partial class Parser
        {
            /// <summary>Rules for layers and modules: partitioned Linear and Embedding fields, [ParallelModule] sub-modules, torch.nn modules.</summary>
            private sealed partial class PlacementWalk
            {
                /// <summary>
                /// A partitioned layer's forward: the input placement it needs (Column R, Row S(-1), Vocab R ids), the resharding
                /// inserted when it arrives otherwise (MP0015 gather, MP0016 slice / all-reduce / reduce-scatter), or MP0014.
                /// </summary>
                private Value LinearForward(IInvocationOperation call, LayerSpec layer, Value input)
                {
                    var variant = LayerVariant.Plain;
                    if (input.IsPartial && layer.Placement == LayerPlacement.Row)
                    {
                        variant = LayerVariant.ReduceScattered;
                        Report(DiagnosticDescriptors.ReshardInsertedId, call.Syntax, Text(call), "a reduce-scatter (P -> S(-1))",
                            $"the partial sum from '{input.Origin}' entering RowParallel '{layer.Field}'", $"tokens x {layer.In} / tp elements per rank, forward; an all-gather of the gradient backward");
                        input = Value.Shard(-1, input.Rank);
                    }
                    if (input.IsPartial)
                    {
                        variant = LayerVariant.Reduced;
                        Report(DiagnosticDescriptors.ReshardInsertedId, call.Syntax, Text(call), "an all-reduce (P -> R)",
                            $"the partial sum from '{input.Origin}' entering {Parser.PlacementName(layer.Placement)} '{layer.Field}'", $"tokens x {layer.In} elements per rank, forward");
                        input = Value.Replicated(input.Rank);
                    }
                    switch (layer.Placement)
                    {
                        case LayerPlacement.Column:
                            if (input.IsSharded && input.Dim == -2)
                            {
                                // The sequence-parallel stream: all-gather the sequence; its backward reduce-scatter sums the
                                // ranks' input gradients, so no f follows.
                                SetSite(call, new LayerSite(LayerVariant.SequenceGathered));
                                return Value.Shard(-1, input.Rank, layer.Field, layer.Out);
                            }
                            if (input.IsSharded && input.Dim == -1)
                            {
                                variant = LayerVariant.Gathered;
                                Report(DiagnosticDescriptors.ColumnAfterColumnId, call.Syntax, layer.Field, input.Origin ?? "an earlier layer");
                            }
                            else if (!input.IsReplicated) return Unsupported(call, input, $"ColumnParallel '{layer.Field}' needs its whole input (R)");
                            SetSite(call, new LayerSite(variant));
                            return Value.Shard(-1, input.Rank, layer.Field, layer.Out);
                        case LayerPlacement.Vocab:
                            if (!input.IsReplicated) return Unsupported(call, input, $"VocabParallel '{layer.Field}' needs whole (R) ids");
                            SetSite(call, new LayerSite(variant));
                            return Value.Replicated(input.Rank is { } r ? r + 1 : null);
                        case LayerPlacement.Row:
                            if (input.IsReplicated)
                            {
                                variant = LayerVariant.Sliced;
                                Report(DiagnosticDescriptors.ReshardInsertedId, call.Syntax, Text(call), "a local slice (R -> S(-1))",
                                    $"the replicated input of RowParallel '{layer.Field}'", "free: no communication forward; an all-gather of the input gradient backward");
                            }
                            else if (!(input.IsSharded && input.Dim == -1)) return Unsupported(call, input, $"RowParallel '{layer.Field}' needs its input sharded on the last dimension (S(-1))");
                            if (layer.Partial)
                            {
                                // A replicated input is sliced first here too: the partial product needs the local slice.
                                SetSite(call, new LayerSite(variant switch
                                {
                                    LayerVariant.Sliced => LayerVariant.SlicedPartial,
                                    LayerVariant.ReduceScattered => LayerVariant.ReduceScatteredPartial,
                                    _ => LayerVariant.Partial,
                                }));
                                return Value.Partial(layer.Field, input.Rank);
                            }
                            if (sequence.Declared && variant == LayerVariant.Plain)
                            {
                                // Sequence parallelism: the partial product is reduce-scattered along the sequence instead of all-reduced.
                                SetSite(call, new LayerSite(LayerVariant.SequenceScattered));
                                return Value.Shard(-2, input.Rank);
                            }
                            SetSite(call, new LayerSite(variant));
                            return Value.Replicated(input.Rank);
                        default:
                            if (!input.IsReplicated) return Unsupported(call, input, $"replicated layer '{layer.Field}' needs its whole input (R)");
                            SetSite(call, new LayerSite(variant));
                            return Value.Replicated(input.Rank);
                    }
                }

                /// <summary>
                /// Any other module's forward. A [ParallelModule] sub-module returns what its own walk proved (from source, or from
                /// the [OutputPlacement] its generated code carries when it comes from another assembly); a torch.nn module is
                /// known by its type; anything else takes and gives whole values.
                /// </summary>
                private Value ModuleForward(IInvocationOperation call, ITypeSymbol module, Value input)
                {
                    var typeName = module.Name;
                    bool torchModule = module.ContainingNamespace?.ToDisplayString() == "TorchSharp.Modules";
                    if (torchModule && typeName.Contains("Dropout"))
                    {
                        Report(DiagnosticDescriptors.UnsupportedShardedOperationId, call.Syntax, Text(call),
                            $"on a value placed {input}: a '{typeName}' module draws from torch's global generator, which differs between ranks, so replicas would drop different elements; call nn.functional.dropout(x, p, training) instead, which gets a stream per tp rank on sharded values and a shared one on replicated values");
                        return input;
                    }
                    if (input.IsPartial) return NonLinear(call, input, $"passes to the '{typeName}' module", "a module may compute anything of its input, so it needs the whole value; feed the partial sum to a Linear layer first");
                    if (module is INamedTypeSymbol named && IsParallelModule(named))
                    {
                        if (SequenceModuleInput(call, named, input) is { } stream)
                        {
                            if (!stream.IsSharded) return stream;
                        }
                        else if (!input.IsReplicated && input.IsTensor) return Unsupported(call, input, $"[ParallelModule] '{typeName}' takes a whole (R) input");
                        if (!IsTensor(call.Type)) return Value.None;
                        // Across a module boundary: the sub-module's own walk says what its forward returns.
                        var output = ReturnedPlacement(named, models, cancellationToken);
                        if (output.Mixed)
                            return Unsupported(call, Value.Shard(-1), $"'{typeName}' returns differently placed values from different returns, so its output cannot be placed here");
                        if (output.Placement is not { } placement)
                        {
                            Report(DiagnosticDescriptors.UnsupportedShardedOperationId, call.Syntax, Text(call),
                                $"'{typeName}' is a [ParallelModule] whose output placement is not known here: {(named.DeclaringSyntaxReferences.Length == 0 ? "it comes from another assembly whose generated code carries no [OutputPlacement] (was it built with ModelParallel's generator?)" : "its forward returns no value the walk could place")}");
                            // Carried on as the usual sharded output, so this one mistake gives this one diagnostic.
                            return Value.Shard(-1);
                        }
                        return placement.Kind == ValueKind.Shard ? Value.Shard(placement.Dim) : Value.Replicated();
                    }
                    if (input.IsReplicated || !input.IsTensor)
                    {
                        // Whole in, whole out, as for any plain module; where the object could be a [ParallelModule] the
                        // static type does not show, the call checks at run time that it is not one returning a shard.
                        if (MayHoldParallelModule(module) && IsTensor(call.Type)) SetSite(call, new CheckedModuleSite());
                        return IsTensor(call.Type) ? Value.Replicated() : Value.None;
                    }
                    if (torchModule && typeName == "LayerNorm" && input.IsSharded && input.Dim <= -2) return ShardedNorm(call, input);
                    if (torchModule && typeName.Contains("Norm"))
                    {
                        if (input.IsSharded && input.Dim == -1)
                        {
                            Report(DiagnosticDescriptors.ShardedReductionId, call.Syntax, Text(call), "normalizes", "-1", input.ToString());
                            return input.With(input.Rank);
                        }
                        return Unsupported(call, input, $"a '{typeName}' module normalizes over trailing dimensions the walk cannot count from its type; give it a whole (R) input");
                    }
                    if (torchModule && typeName is "GELU" or "ReLU" or "SiLU" or "Tanh" or "Sigmoid" or "Identity") return input.With(input.Rank);
                    return Unsupported(call, input, $"'{typeName}' modules take whole (R) inputs here");
                }

                /// <summary>
                /// A module type an instance of a [ParallelModule] class could hide behind or inside: not sealed
                /// (nn.Module&lt;T, TResult&gt;, an unsealed class), an interface, or torch's Sequential, which runs the modules it holds.
                /// </summary>
                private static bool MayHoldParallelModule(ITypeSymbol module) =>
                    module.TypeKind == TypeKind.Interface
                    || module.TypeKind == TypeKind.Class && (!module.IsSealed || (module.Name == "Sequential" && module.ContainingNamespace?.ToDisplayString() == "TorchSharp.Modules"));

                private bool IsParallelModule(INamedTypeSymbol module) => ParallelModuleOf(module, Known.ParallelModule) is not null;
            }
        }
    }
}
