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
            /// Rules for views and layout: view, reshape, expand, transpose, permute, unsqueeze, squeeze, narrow, chunk, split,
            /// repeat_interleave, repeat and cat follow the shard's dimension, or refuse when they would split or merge it in a
            /// way the ranks' slices cannot follow.
            /// </summary>
            private sealed partial class PlacementWalk
            {
                private Value? ViewMethod(IInvocationOperation call, string name, Value self, List<Value> arguments)
                {
                    switch (name)
                    {
                        case "view" or "reshape" or "expand":
                            return Shape(call, name == "view" ? ShapeMethod.View : name == "reshape" ? ShapeMethod.Reshape : ShapeMethod.Expand, self);
                        case "size" when self.IsSharded:
                            ShapeRead(call, self, call.Arguments.FirstOrDefault(a => a.Parameter?.Ordinal == 0)?.Value);
                            return Value.None;
                        case "transpose" or "swapaxes" or "swapdims":
                        {
                            if (!self.IsSharded) return self.With(self.Rank);
                            var (a, b) = (Constant(call, 0), Constant(call, 1));
                            if (a is null || b is null) return Unsupported(call, self, "its dimensions must be constants to follow the shard");
                            int na = Normalize(a.Value, self.Rank), nb = Normalize(b.Value, self.Rank);
                            if (na >= 0 || nb >= 0) return Unsupported(call, self, "the value's number of dimensions is not known here; use negative dimensions");
                            return Value.Shard(self.Dim == na ? nb : self.Dim == nb ? na : self.Dim, self.Rank);
                        }
                        case "permute":
                        {
                            var order = Constants(call);
                            if (!self.IsSharded) return self.With(order?.Length ?? self.Rank);
                            if (order is null || self.Rank is not { } rank || order.Length != rank)
                                return Unsupported(call, self, "permute of a sharded value needs constant dimensions and a known number of dimensions");
                            int from = rank + self.Dim;
                            int to = System.Array.IndexOf(order, from) >= 0 ? System.Array.IndexOf(order, from) : System.Array.IndexOf(order, self.Dim);
                            if (to < 0) return Unsupported(call, self, "permute does not name the sharded dimension");
                            return Value.Shard(to - rank, rank);
                        }
                        case "unsqueeze":
                        {
                            var d = Constant(call, 0);
                            if (!self.IsSharded) return self.With(self.Rank + 1);
                            if (d is null) return Unsupported(call, self, "its dimension must be a constant to follow the shard");
                            if (Unplaceable(d.Value, self)) return UnknownRank(call, self, d.Value);
                            // The new dimension's place counted from the end of the result: the dimensions after it keep theirs.
                            int at = d.Value < 0 ? d.Value : d.Value - (self.Rank!.Value + 1);
                            return Value.Shard(self.Dim > at ? self.Dim : self.Dim - 1, self.Rank + 1);
                        }
                        case "squeeze":
                        {
                            var d = Constant(call, 0);
                            if (!self.IsSharded) return self.With(d is null ? null : self.Rank - 1);
                            if (d is null) return Unsupported(call, self, "squeeze of a sharded value needs a constant dimension: without one, a dimension of size 1 on some rank's slice would go");
                            if (Unplaceable(d.Value, self)) return UnknownRank(call, self, d.Value);
                            int n = Normalize(d.Value, self.Rank);
                            if (n == self.Dim) return Unsupported(call, self, "squeeze of the sharded dimension: its local size is not the whole one's");
                            return Value.Shard(self.Dim < n ? self.Dim + 1 : self.Dim, self.Rank - 1);
                        }
                        case "narrow" or "slice":
                        {
                            var d = Constant(call, 0);
                            if (!self.IsSharded) return self.With(self.Rank);
                            if (d is null) return Unsupported(call, self, "its dimension must be a constant to follow the shard");
                            if (Unplaceable(d.Value, self)) return UnknownRank(call, self, d.Value);
                            if (Normalize(d.Value, self.Rank) == self.Dim) return Unsupported(call, self, $"{name} along the sharded dimension: each rank holds other indices of it");
                            return self.With(self.Rank);
                        }
                        case "repeat_interleave":
                        {
                            if (!self.IsSharded) return self.IsPartial ? Keep(self) : Value.Replicated(Constant(call, 1) is null ? 1 : self.Rank);
                            var (repeats, d) = (Constant(call, 0), Constant(call, 1));
                            if (repeats is null || d is null)
                                return Unsupported(call, self, "repeat_interleave of a sharded value needs constant repeats and a constant dimension (without one it flattens the value)");
                            if (Unplaceable(d.Value, self)) return UnknownRank(call, self, d.Value);
                            // Along the sharded dimension too: each rank repeats its own slice, which is its slice of the whole result
                            // (grouped-query attention: a rank's key heads serve exactly its query heads).
                            return self.With(self.Rank);
                        }
                        case "repeat":
                        {
                            var counts = Constants(call);
                            if (!self.IsSharded) return self.IsPartial ? Keep(self) : Value.Replicated(counts?.Length);
                            if (counts is null) return Unsupported(call, self, "repeat of a sharded value needs constant counts");
                            int rank = counts.Length;
                            if (self.Dim + rank < 0) return Unsupported(call, self, "repeat names fewer dimensions than the value has");
                            if (counts[rank + self.Dim] != 1)
                                return Unsupported(call, self, "repeat tiles the sharded dimension, which would interleave the ranks' slices; use repeat_interleave, or repeat another dimension");
                            return Value.Shard(self.Dim, rank);
                        }
                        case "contiguous" or "clone" or "detach" or "to" or "type_as" or "alias" or "requires_grad_" or "float" or "half" or "bfloat16":
                            return Keep(self);
                        case "chunk" or "split":
                            return Split(call, name, self);
                        default:
                            return null;
                    }
                }

                private Value? ViewFunction(IInvocationOperation call, string name, List<Value> arguments) => name switch
                {
                    "cat" or "concat" or "concatenate" => Cat(call, arguments.FirstOrDefault()),
                    _ => null,
                };

                /// <summary>
                /// view, reshape or expand with the sizes written out: the shard follows the major factor of its group, and the
                /// written (logical) size there is divided by tp at run time (ShardedShapes).
                /// </summary>
                private Value Shape(IInvocationOperation call, ShapeMethod method, Value self)
                {
                    var shape = ParamsCount(call);
                    if (!self.IsSharded)
                    {
                        SetSite(call, new PlainSite());
                        return self.IsPartial ? Value.Partial(self.Origin, shape) : Value.Replicated(shape);
                    }
                    var name = method.ToString().ToLowerInvariant();
                    if (shape is not { } rank)
                        return Unsupported(call, self, $"'{name}' of a sharded value needs its sizes written out, so the generator can tell which one carries the shard");
                    int dim;
                    if (method == ShapeMethod.Expand)
                    {
                        // expand keeps every dimension counted from the end; it may add leading ones.
                        if (self.Rank is { } before && before > rank) return Unsupported(call, self, "expand names fewer dimensions than the value has");
                        dim = self.Dim;
                    }
                    else
                    {
                        // With the rank known, the shard follows the major factor of its group; a value straight from the
                        // module's input has no known rank, and a view of it splits its last dimension into (heads, head size).
                        dim = KeepsLastDimension(call, self) ? -1
                            : self.Rank is { } before ? ShiftFromEnd(self.Dim, before, rank) : self.Dim == -1 ? -2 : self.Dim;
                    }
                    if (rank + dim < 0) return Unsupported(call, self, $"'{name}' to {rank} dimensions leaves no place for the shard at dimension {self.Dim}");
                    SetSite(call, new ShapeSite(method, dim, self.Dim));
                    CheckViewDivisible(call, rank + dim);
                    return Value.Shard(dim, rank, size: dim == -1 ? self.Size : null);
                }

                private Value Split(IInvocationOperation call, string name, Value self)
                {
                    if (!self.IsSharded) return self.With(self.Rank).AsArray;
                    var dim = Constant(call, 1) ?? -1;
                    if (Unplaceable(dim, self))
                    {
                        UnknownRank(call, self, dim);
                        return self.With(self.Rank).AsArray;
                    }
                    if (Normalize(dim, self.Rank) == self.Dim)
                    {
                        if (self.Origin is null || name != "chunk" || Constant(call, 0) is not { } parts || parts < 2)
                            return Unsupported(call, self, "only chunk(n, dim) of a ColumnParallel layer's own output can split the sharded dimension (the layer then holds its slice of each part)").AsArray;
                        facts.Chunks[self.Origin] = parts;
                    }
                    return self.With(self.Rank).AsArray;
                }

                private Value Cat(IInvocationOperation call, Value first)
                {
                    var parts = call.Arguments.FirstOrDefault()?.Value is IArrayCreationOperation { Initializer: { } written } ? written.ElementValues.Select(Eval).ToList() : null;
                    if (parts is null) return first.IsPlaced ? Unsupported(call, first, "cat of a sharded array needs its parts written out") : Default(call.Type);
                    if (parts.All(v => v.IsReplicated)) return Value.Replicated(parts.All(v => v.Rank == parts[0].Rank) ? parts[0].Rank : null);
                    var dim = Constant(call, 1) ?? 0;
                    var shard = parts.First(v => !v.IsReplicated);
                    if (!shard.IsSharded || parts.Any(v => !v.SamePlacement(shard)))
                        return Unsupported(call, shard, "cat needs every part placed alike");
                    if (Unplaceable(dim, shard)) return UnknownRank(call, shard, dim);
                    if (Normalize(dim, shard.Rank) == shard.Dim)
                        return Unsupported(call, shard, "cat along the sharded dimension would interleave the ranks' slices");
                    return shard.With(parts.All(v => v.Rank == shard.Rank) ? shard.Rank : null);
                }

                /// <summary>
                /// A view whose last size is written exactly as the sharded dimension's own size (for example
                /// <c>logits.view(-1, vocab)</c> after a head built with <c>vocab</c> outputs) keeps the shard on the last
                /// dimension: the leading dimensions were merged or split, not the sharded one.
                /// </summary>
                private static bool KeepsLastDimension(IInvocationOperation call, Value self) =>
                    self.Dim == -1 && self.Size is { } size && call.Arguments.FirstOrDefault()?.Value is IArrayCreationOperation { Initializer: { } initializer }
                    && initializer.ElementValues.Length > 0 && Instance(initializer.ElementValues[initializer.ElementValues.Length - 1])?.Syntax.ToString() == size;

                /// <summary>MP0010: the size written at the view's shard position, when constant, must divide by every declared tp.</summary>
                private void CheckViewDivisible(IInvocationOperation call, int index)
                {
                    if (sizes.Length == 0 || call.Arguments.FirstOrDefault()?.Value is not IArrayCreationOperation { Initializer: { } initializer }) return;
                    if (index < 0 || index >= initializer.ElementValues.Length) return;
                    var element = initializer.ElementValues[index];
                    if (element.ConstantValue is not { HasValue: true, Value: { } value } || !long.TryParse(value.ToString(), out long size) || size < 0) return;
                    foreach (var tp in sizes.Where(tp => size % tp != 0).Take(1))
                        Report(DiagnosticDescriptors.NotDivisibleId, element.Syntax, $"dimension {index} of the {call.TargetMethod.Name}", size.ToString(), $"'{Text(call)}' (it carries the tp shard, e.g. the heads)", tp.ToString(), type.Name);
                }

                /// <summary>
                /// A size read of a sharded value (<c>shape</c>, <c>shape[k]</c>, <c>size(k)</c>) is the local shard's on each
                /// rank. Allowed only where the dimension read is provably not the sharded one.
                /// </summary>
                private void ShapeRead(IOperation at, Value value, IOperation? index)
                {
                    if (!value.IsSharded) return;
                    int? fromEnd = index switch
                    {
                        IUnaryOperation { OperatorKind: UnaryOperatorKind.Hat } hat when ConstantOf(hat.Operand) is { } k => -k,
                        { } i when ConstantOf(i) is { } c && c < 0 => c,
                        { } i when ConstantOf(i) is { } c && value.Rank is { } rank => c - rank,
                        _ => null,
                    };
                    if (fromEnd is { } d && d != value.Dim) return;
                    var what = index is null ? "reads the whole shape" : fromEnd is null ? "reads a size whose dimension the walk cannot place (not a constant, or counted from the start on a value of unknown rank)" : "reads the size of the sharded dimension";
                    Unsupported(at, value, $"{what}: on each rank it is the local shard's (that dimension divided by tp), not one device's; read the size from the layer's input, or of a dimension counted from the end that is not sharded");
                }

                /// <summary>A shard at <paramref name="dim"/> (from the end) of a rank-<paramref name="before"/> value, after a view to rank <paramref name="after"/>: the major factor of its group.</summary>
                private static int ShiftFromEnd(int dim, int before, int after) =>
                    after > before ? dim - (after - before) : after < before ? dim + (before - after) : dim;
            }
        }
    }
}
