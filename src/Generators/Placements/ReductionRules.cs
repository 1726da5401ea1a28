using System.Collections.Generic;
using System.Linq;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.Operations;

namespace ModelParallel.Generators
{
    public sealed partial class ParallelModuleGenerator
    {
        internal static partial class Parser
        {
            /// <summary>
            /// Rules for reductions and normalizations: over the sharded dimension they need every rank's slice (MP0011); over
            /// another they keep the shard, which moves one place towards the end when a dimension after it goes. A sum or
            /// mean of a partial sum stays a partial sum; any other reduction of one is MP0012.
            /// </summary>
            private sealed partial class PlacementWalk
            {
                private static readonly HashSet<string> Reductions = new() { "sum", "mean", "max", "min", "amax", "amin", "var", "std", "norm", "logsumexp", "softmax", "log_softmax" };

                private static readonly HashSet<string> DimensionParameters = new() { "dim", "dim0", "dim1", "dim2", "dims", "dimensions", "dimension" };

                private Value? ReductionMethod(IInvocationOperation call, string name, Value self) =>
                    Reductions.Contains(name) ? Reduce(call, name, self) : null;

                private Value? ReductionFunction(IInvocationOperation call, string name, List<Value> arguments)
                {
                    var first = arguments.FirstOrDefault();
                    switch (name)
                    {
                        case "softmax" or "log_softmax" or "sum" or "mean" or "logsumexp" or "amax" or "amin":
                            return Reduce(call, name, first);
                        case "layer_norm" or "rms_norm" or "group_norm" or "batch_norm":
                            if (first.IsPartial) return NonLinear(call, first, $"applies {name} to", $"{name} of the summands is not {name} of the sum");
                            if (first.IsSharded && first.Dim == -1)
                            {
                                Report(DiagnosticDescriptors.ShardedReductionId, call.Syntax, Text(call), "normalizes", "-1", first.ToString());
                                return first.With(first.Rank);
                            }
                            if (first.IsSharded && name is "layer_norm" or "rms_norm")
                                return Unsupported(call, first, $"{name} normalizes over trailing dimensions given as a shape the walk does not follow; give it a whole (R) input");
                            if (first.IsSharded) return Unsupported(call, first, $"{name} of a sharded value has no placement rule");
                            return first.With(first.Rank);
                        default:
                            return null;
                    }
                }

                private Value Reduce(IInvocationOperation call, string name, Value self)
                {
                    bool keepsShape = name is "softmax" or "log_softmax";
                    if (self.IsPartial)
                        return name is "sum" or "mean" ? Keep(self) : NonLinear(call, self, $"takes {name} of", $"{name} of the summands is not {name} of the sum");
                    var dims = ReducedDimensions(call, out bool written);
                    bool? keepdim = keepsShape ? true : Flag(call, "keepdim");
                    if (!self.IsSharded)
                    {
                        if (!self.IsTensor || !IsTensor(call.Type)) return Value.None;
                        return Value.Replicated(keepdim == true ? self.Rank : dims is null || !written ? null : self.Rank - dims.Length);
                    }
                    if (written && dims is null) return Unsupported(call, self, "its dimensions must be constants to follow the shard");
                    if (dims?.Where(d => Unplaceable(d, self)).Select(d => (int?)d).FirstOrDefault() is { } fromStart) return UnknownRank(call, self, fromStart);
                    var fromEnd = dims?.Select(d => Normalize(d, self.Rank)).ToArray();
                    if (fromEnd is null || fromEnd.Contains(self.Dim))
                    {
                        Report(DiagnosticDescriptors.ShardedReductionId, call.Syntax, Text(call), keepsShape ? "takes a softmax" : "reduces",
                            dims is null ? "(all)" : string.Join(", ", dims), self.ToString());
                        return self.With(self.Rank);
                    }
                    if (!IsTensor(call.Type)) return Value.None;
                    if (keepdim is null) return Unsupported(call, self, "keepdim must be a constant to follow the shard");
                    if (keepdim == true) return self.With(self.Rank);
                    // The reduced dimensions after the shard go, so the shard moves that many places towards the end.
                    return Value.Shard(self.Dim + fromEnd.Count(d => d > self.Dim), self.Rank - fromEnd.Length);
                }

                /// <summary>
                /// The dimensions a reduction names (dim, dim0..dim2, or an array of them), when all are constants. Null with
                /// <paramref name="written"/> false when it names none (it reduces everything); null with it true when one is not constant.
                /// </summary>
                private static int[]? ReducedDimensions(IInvocationOperation call, out bool written)
                {
                    var found = new List<int>();
                    written = false;
                    foreach (var argument in call.Arguments)
                    {
                        if (argument.Parameter is not { } parameter || !DimensionParameters.Contains(parameter.Name)) continue;
                        var value = Instance(argument.Value);
                        if (argument.ArgumentKind == ArgumentKind.DefaultValue && value?.ConstantValue is { HasValue: true, Value: null }) continue;
                        written = true;
                        if (value is IArrayCreationOperation { Initializer: { } initializer })
                        {
                            foreach (var element in initializer.ElementValues)
                            {
                                if (ConstantOf(element) is not { } d) return null;
                                found.Add(d);
                            }
                        }
                        else if (ConstantOf(argument.Value) is { } single) found.Add(single);
                        else return null;
                    }
                    return written ? found.ToArray() : null;
                }
            }
        }
    }
}
