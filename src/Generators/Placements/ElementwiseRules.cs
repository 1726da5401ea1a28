using System.Collections.Generic;
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
            /// Rules for elementwise work: activations keep a shard and refuse a partial sum (MP0012); operators and their
            /// methods combine two placements by the algebra (P + P = P, P x R = P, S(d) op S(d) = S(d), S(d) op R when R
            /// does not reach dimension d); functional dropout gets a stream per tp rank on a shard.
            /// </summary>
            private sealed partial class PlacementWalk
            {
                private static readonly HashSet<string> Activations = new()
                {
                    "gelu", "relu", "silu", "tanh", "sigmoid", "exp", "sqrt", "rsqrt", "abs", "cos", "sin", "log", "square", "reciprocal",
                    "elu", "leaky_relu", "mish", "softplus", "pow", "sign", "erf",
                };

                private Value Unary(IUnaryOperation unary, Value operand) => unary.OperatorKind switch
                {
                    UnaryOperatorKind.Minus or UnaryOperatorKind.Plus => Keep(operand),
                    _ when operand.IsPartial && IsTensor(unary.Type) => NonLinear(unary, operand, $"applies '{unary.OperatorKind}' to", "it is not linear"),
                    _ => operand.With(operand.Rank),
                };

                private Value? ElementwiseMethod(IInvocationOperation call, string name, Value self, List<Value> arguments)
                {
                    switch (name)
                    {
                        case "neg":
                            return Keep(self);
                        case "add" or "sub" or "mul" or "div":
                            return Binary(call, name switch { "add" => BinaryOperatorKind.Add, "sub" => BinaryOperatorKind.Subtract, "mul" => BinaryOperatorKind.Multiply, _ => BinaryOperatorKind.Divide },
                                self, arguments.FirstOrDefault());
                        case "masked_fill":
                            if (self.IsPartial) return NonLinear(call, self, "fills masked elements of", "every rank would write the fill value into its summand");
                            return Combine(call, self, arguments.FirstOrDefault(), "masked_fill with its mask");
                        case var unary when Activations.Contains(unary):
                            if (self.IsPartial) return NonLinear(call, self, $"applies {name} to", $"{name} of the summands is not {name} of the sum");
                            return self.With(self.Rank);
                        default:
                            return null;
                    }
                }

                private Value? ElementwiseFunction(IInvocationOperation call, string name, List<Value> arguments)
                {
                    var first = arguments.FirstOrDefault();
                    switch (name)
                    {
                        case "dropout" when first.IsSharded || first.IsReplicated:
                            SetSite(call, new DropoutSite(first.IsSharded));
                            return first.With(first.Rank);
                        case "dropout":
                            if (first.IsPartial) return NonLinear(call, first, "applies dropout to", "each rank would drop different elements of its summand");
                            return Default(call.Type);
                        case var unary when Activations.Contains(unary):
                            if (first.IsPartial) return NonLinear(call, first, $"applies {name} to", $"{name} of the summands is not {name} of the sum");
                            return first.With(first.Rank);
                        default:
                            return null;
                    }
                }

                private Value Binary(IOperation operation, BinaryOperatorKind kind, Value a, Value b)
                {
                    if (!IsTensor(operation.Type)) return Value.None;
                    bool additive = kind is BinaryOperatorKind.Add or BinaryOperatorKind.Subtract;
                    if (a.IsPartial || b.IsPartial)
                    {
                        var (p, other) = a.IsPartial ? (a, b) : (b, a);
                        // Scaling a sum scales each summand: P x c, c x P, P / c; a sum of sums is a sum.
                        bool scales = kind == BinaryOperatorKind.Multiply || (kind == BinaryOperatorKind.Divide && a.IsPartial);
                        if (!other.IsTensor)
                            return scales ? Keep(p) : NonLinear(operation, p, additive ? "adds a constant to" : $"{kind} of a constant and", additive
                                ? "every rank would add it to its summand, so the sum would hold it tp times" : "it is not linear in the sum");
                        if (other.IsPartial && additive) return Value.Partial(a.Origin ?? b.Origin, Broadcast(a.Rank, b.Rank));
                        if (other.IsReplicated && scales)
                            return other.NoGrad ? Value.Partial(p.Origin, Broadcast(a.Rank, b.Rank)) : NonLinear(operation, p, "scales, by a whole value that may need a gradient,",
                                "each rank would get that value's gradient from its own summand only, a partial sum; scale by a value that needs no gradient (torch functions of sizes, or detach()), or reduce the sum first (a RowParallel layer that reduces its output)");
                        if (other.IsReplicated && additive)
                            return NonLinear(operation, p, "adds a whole (R) value to", "every rank would add it to its summand, so the sum would hold it tp times");
                        if (other.IsPartial)
                            return NonLinear(operation, p, $"{kind} of two", "the product of two sums is not the sum of the products of their summands");
                        if (other.IsReplicated)
                            return NonLinear(operation, p, $"{kind} of a whole value by", "it is not linear in the sum");
                        return Unsupported(operation, p, $"{kind} of a partial sum and a value placed {other}");
                    }
                    return Combine(operation, a, b, kind.ToString());
                }

                /// <summary>
                /// Two values combined elementwise with broadcasting. A shard meets a shard on the same dimension, or a whole value
                /// that does not reach the sharded dimension (fewer dimensions than the shard counts from the end), so each rank
                /// computes its slice of the whole result. A whole value that may reach it is refused: its size there is the
                /// whole one, the shard's is a slice.
                /// </summary>
                private Value Combine(IOperation operation, Value a, Value b, string what)
                {
                    if (!a.IsTensor) return b.With(b.Rank);
                    if (!b.IsTensor) return a.With(a.Rank);
                    var rank = Broadcast(a.Rank, b.Rank);
                    if (a.IsReplicated && b.IsReplicated) return Value.Replicated(rank);
                    if (a.IsSharded && b.IsSharded)
                        return a.Dim == b.Dim ? Value.Shard(a.Dim, rank)
                            : Unsupported(operation, a, $"{what} of a value placed {a} and one placed {b}; operators cannot be intercepted, so no resharding can be inserted here");
                    var (shard, whole) = a.IsSharded ? (a, b) : (b, a);
                    if (whole.Rank is { } wholeRank && wholeRank < -shard.Dim)
                        return whole.NoGrad || !whole.IsReplicated ? Value.Shard(shard.Dim, rank)
                            : Unsupported(operation, shard, $"{what} of a value placed {shard} and a whole (R) value broadcast over it, which may need a gradient: each rank uses it on its slice only, so its gradient from here would be that slice's share, a partial sum, on every rank. A whole value broadcast into a shard must need no gradient: build it with torch functions from sizes (arange, ones, outer…), or detach() it");
                    // The sequence-parallel stream meets a whole value (a residual, positions): split it where it was produced.
                    if (shard.Dim == -2 && whole.IsReplicated && Demand(whole)) return Value.Shard(-2, rank);
                    var split = shard.Dim == -2 && whole.IsReplicated ? $" (a whole value can be split along the sequence only where it is produced: {NoSplit(whole)})" : "";
                    return Unsupported(operation, shard, whole.Rank is { } known
                        ? $"{what} of a value placed {shard} and a whole (R) value of {known} dimensions, which reaches the sharded dimension {shard.Dim}: its size there is the whole one, each rank's slice is smaller; shard it alike, or give it fewer dimensions so it broadcasts{split}"
                        : $"{what} of a value placed {shard} and a whole (R) value whose number of dimensions the walk does not know, so it may reach the sharded dimension {shard.Dim}; give it a known rank (a view with its sizes written out) with fewer than {-shard.Dim} dimensions{split}");
                }
            }
        }
    }
}
