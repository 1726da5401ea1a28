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
            /// <summary>
            /// Rules for sequence parallelism: the residual stream S(-2) entering a [ParallelModule(SequenceParallel = true)],
            /// a whole value split along the sequence by the module call that produced it, and a LayerNorm on a sequence shard.
            /// </summary>
            private sealed partial class PlacementWalk
            {
                /// <summary>
                /// A module forward's whole result, marked with the call that produced it; or, when an earlier round of the walk
                /// asked for it, split along the sequence there (S(-2)).
                /// </summary>
                private Value Produced(IInvocationOperation call, Value value)
                {
                    if (!value.IsReplicated || value.IsArray || call.TargetMethod.Name != "forward" || facts.Sites.ContainsKey(call.Syntax)) return value;
                    if (Instance(call.Instance) is not { } receiver || receiver.Type is null || IsTensor(receiver.Type)) return value;
                    if (!sequence.Scattered.Contains(call.Syntax)) return value.ProducedBy(call.Syntax);
                    SetSite(call, new SequenceScatterSite());
                    return Value.Shard(-2, value.Rank);
                }

                /// <summary>
                /// Asks for a whole value to be split along the sequence where it is produced; false when it cannot be (it is not
                /// the unchanged result of a module's forward, or that call already has an interceptor).
                /// </summary>
                private bool Demand(Value whole)
                {
                    if (whole.Producer is not { } producer || facts.Sites.ContainsKey(producer) || Pipelined) return false;
                    facts.Demands.Add(producer);
                    return true;
                }

                /// <summary>Why a whole value could not be split along the sequence, for the diagnostic.</summary>
                private string NoSplit(Value whole) =>
                    Pipelined ? "sequence parallelism is not supported in a module with pipeline stages yet"
                    : whole.Producer is null ? "it is not the unchanged output of a module's forward, the call the generator can split it at; compute it in a module (an embedding module, another block) and pass that module's output"
                    : "the call that produced it is already partitioned otherwise";

                /// <summary>The class places layers on pipeline stages, whose calls carry the stage gating.</summary>
                private bool Pipelined => type.GetMembers().OfType<IFieldSymbol>().Any(f => f.GetAttributes().Any(a =>
                    Known.Is(a.AttributeClass, StagesAttribute) || Known.Is(a.AttributeClass, FirstAttribute) || Known.Is(a.AttributeClass, LastAttribute)));

                /// <summary>
                /// A [ParallelModule(SequenceParallel = true)] sub-module takes the residual stream S(-2): a whole input is split
                /// where it was produced, anything else is refused.
                /// </summary>
                private Value? SequenceModuleInput(IInvocationOperation call, INamedTypeSymbol module, Value input)
                {
                    if (!SequenceParallelDeclared(module, Known.ParallelModule)) return null;
                    if (input.IsSharded && input.Dim == -2) return input;
                    if (input.IsReplicated)
                        return Demand(input) ? Value.Shard(-2, input.Rank)
                            : Unsupported(call, input, $"[ParallelModule(SequenceParallel = true)] '{module.Name}' takes its input split along the sequence (S(-2)), and this whole value cannot be split: {NoSplit(input)}");
                    return Unsupported(call, input, $"[ParallelModule(SequenceParallel = true)] '{module.Name}' takes its input split along the sequence (S(-2))");
                }

                /// <summary>
                /// A LayerNorm given a value sharded on a dimension before the last normalizes each row locally; its weight and bias
                /// gradients, summed over this rank's rows only, are all-reduced over tp (checked at run time that it normalizes the last dimension only).
                /// </summary>
                private Value ShardedNorm(IInvocationOperation call, Value input)
                {
                    SetSite(call, new ShardedNormSite(input.Dim));
                    return input.With(input.Rank);
                }
            }
        }
    }
}
