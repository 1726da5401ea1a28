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
            /// Rules for attention: matmul and bmm of values sharded alike on a batch dimension (the heads), and
            /// scaled_dot_product_attention of q, k and v sharded alike on the heads (or whole k and v, sliced like q: multi-query
            /// attention); attending over a sharded sequence or head size is MP0011.
            /// </summary>
            private sealed partial class PlacementWalk
            {
                private Value? AttentionMethod(IInvocationOperation call, string name, Value self, List<Value> arguments) => name switch
                {
                    "matmul" or "bmm" => MatMul(call, self, arguments.FirstOrDefault()),
                    _ => null,
                };

                private Value? AttentionFunction(IInvocationOperation call, string name, List<Value> arguments)
                {
                    var first = arguments.FirstOrDefault();
                    switch (name)
                    {
                        case "matmul" or "bmm":
                            return MatMul(call, first, arguments.ElementAtOrDefault(1));
                        case "scaled_dot_product_attention":
                        {
                            var (q, k, v) = (first, arguments.ElementAtOrDefault(1), arguments.ElementAtOrDefault(2));
                            var mask = call.Arguments.FirstOrDefault(a => a.Parameter?.Name == "attn_mask") is { ArgumentKind: not ArgumentKind.DefaultValue } m
                                && m.Value.ConstantValue is not { HasValue: true, Value: null } ? Eval(m.Value) : Value.None;
                            if (!q.IsSharded && !k.IsSharded && !v.IsSharded)
                                return q.IsPlaced || k.IsPlaced || v.IsPlaced ? NonLinear(call, q.IsPartial ? q : k.IsPartial ? k : v, "attends over", "attention is not linear in its inputs") : Value.Replicated(q.Rank);
                            if (q.IsSharded && q.Dim <= -3 && k.IsReplicated && v.IsReplicated)
                            {
                                // Multi-query attention: whole keys and values, each rank keeps its heads of them.
                                SetSite(call, new SlicedAttentionSite(q.Dim));
                                Report(DiagnosticDescriptors.ReshardInsertedId, call.Syntax, Text(call), $"a local slice of the keys and values (R -> {q})",
                                    "the whole keys and values of attention over heads sharded on the queries", "free: no communication forward; an all-gather of their gradients backward");
                                if (mask.IsTensor) Combine(call, q, mask, "scaled_dot_product_attention with its mask");
                                return q.With(q.Rank);
                            }
                            if (!q.SamePlacement(k) || !q.SamePlacement(v))
                                return Unsupported(call, q.IsSharded ? q : k.IsSharded ? k : v, $"q, k and v must be sharded alike (here {q}, {k}, {v})");
                            if (q.Dim >= -2)
                            {
                                Report(DiagnosticDescriptors.ShardedReductionId, call.Syntax, Text(call), "attends", q.Dim.ToString(), q.ToString());
                                return q.With(q.Rank);
                            }
                            if (mask.IsTensor) Combine(call, q, mask, "scaled_dot_product_attention with its mask");
                            return q.With(q.Rank);
                        }
                        default:
                            return null;
                    }
                }

                private Value MatMul(IOperation call, Value a, Value b)
                {
                    int? rank = a.Rank is >= 2 && b.Rank is >= 2 ? Broadcast(a.Rank, b.Rank) : null;
                    if (a.IsPartial || b.IsPartial)
                    {
                        var (p, other) = a.IsPartial ? (a, b) : (b, a);
                        // A product with a whole value is linear in the sum; that value's gradient would be each rank's partial one.
                        if (other.IsReplicated && !other.NoGrad)
                            return NonLinear(call, p, "multiplies, by a whole value that may need a gradient,", "each rank would get that value's gradient from its own summand only, a partial sum; multiply by a value that needs no gradient, or reduce the sum first");
                        return other.IsReplicated ? Value.Partial(p.Origin, rank)
                            : NonLinear(call, p, $"multiplies a value placed {other} by", "the product of two sums is not the sum of the products of their summands");
                    }
                    if (!a.IsSharded && !b.IsSharded) return Value.Replicated(rank);
                    if (a.SamePlacement(b) && a.Dim <= -3) return Value.Shard(a.Dim, rank);
                    return Unsupported(call, a.IsSharded ? a : b, $"matmul of {a} and {b}: both operands must be sharded on the same batch dimension (heads), not on the two multiplied ones");
                }
            }
        }
    }
}
