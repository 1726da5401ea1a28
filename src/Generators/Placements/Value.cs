using System.Collections.Generic;
using Microsoft.CodeAnalysis;
using ModelParallel.Generators.Model;

namespace ModelParallel.Generators
{
    public sealed partial class ParallelModuleGenerator
    {
        internal static partial class Parser
        {
            /// <summary>A tensor value of forward as the walk knows it: its placement and what else it needs to follow the shard.</summary>
            private readonly struct Value
            {
                public Value(ValueKind kind, int dim = 0, int? rank = null, string? origin = null, bool array = false, string? size = null, SyntaxNode? producer = null, bool noGrad = false)
                {
                    Producer = producer;
                    NoGrad = noGrad;
                    Kind = kind;
                    Dim = kind == ValueKind.Shard ? dim : 0;
                    Rank = rank;
                    Origin = origin;
                    IsArray = array;
                    Size = size;
                }

                /// <summary>None (not a tensor), Replicate, Shard or Partial.</summary>
                public ValueKind Kind { get; }

                /// <summary>The sharded dimension, negative (from the end), for Shard.</summary>
                public int Dim { get; }

                /// <summary>The number of dimensions, when known.</summary>
                public int? Rank { get; }

                /// <summary>The layer whose output this is, unchanged: a ColumnParallel layer (a fused projection's chunks need it), or the RowParallel layer a partial sum came from.</summary>
                public string? Origin { get; }

                /// <summary>An array of tensors, each with this placement (the result of chunk or split).</summary>
                public bool IsArray { get; }

                /// <summary>The logical size of the sharded dimension as written in the source (a ColumnParallel layer's out_features), when known.</summary>
                public string? Size { get; }

                /// <summary>
                /// The module <c>forward</c> call whose unchanged whole result this is, when it has no interceptor of its own: the
                /// call that can split it along the sequence when a sequence-parallel consumer needs it so.
                /// </summary>
                public SyntaxNode? Producer { get; }

                /// <summary>This whole value as the unchanged result of <paramref name="call"/>.</summary>
                public Value ProducedBy(SyntaxNode call) => new(Kind, Dim, Rank, Origin, IsArray, Size, call, NoGrad);

                /// <summary>
                /// A whole value that provably needs no gradient: built by torch factories (arange, ones…), compared, or
                /// detached, and by tensor operations of such values only. Only such a value may broadcast into a shard: the
                /// gradient of any other would be each rank's sum over its slice, a partial sum.
                /// </summary>
                public bool NoGrad { get; }

                /// <summary>This value, known to need no gradient.</summary>
                public Value AsNoGrad() => new(Kind, Dim, Rank, Origin, IsArray, Size, Producer, noGrad: true);

                /// <summary>This value, no longer known to need no gradient (merged with one that may).</summary>
                public Value MayNeedGrad() => new(Kind, Dim, Rank, Origin, IsArray, Size, Producer);

                public bool IsSharded => Kind == ValueKind.Shard;

                public bool IsPartial => Kind == ValueKind.Partial;

                public bool IsReplicated => Kind == ValueKind.Replicate;

                public bool IsTensor => Kind != ValueKind.None;

                /// <summary>Sharded or partial: a value whose local tensor is not the whole value.</summary>
                public bool IsPlaced => Kind is ValueKind.Shard or ValueKind.Partial;

                public ValuePlacement Placement => new(Kind, Dim);

                public static Value None => new(ValueKind.None);

                public static Value Replicated(int? rank = null) => new(ValueKind.Replicate, 0, rank);

                public static Value Shard(int dim, int? rank = null, string? origin = null, string? size = null) => new(ValueKind.Shard, dim, rank, origin, size: size);

                public static Value Partial(string? origin, int? rank = null) => new(ValueKind.Partial, 0, rank, origin);

                /// <summary>The same placement with another rank; a partial sum keeps its origin, a shard drops its layer's.</summary>
                public Value With(int? rank) => new(Kind, Dim, rank, IsPartial ? Origin : null, IsArray, Size);

                /// <summary>One element of an array value.</summary>
                public Value Element => new(Kind, Dim, Rank, IsPartial ? Origin : null);

                /// <summary>An array whose elements are placed like this value.</summary>
                public Value AsArray => new(Kind, Dim, Rank, null, array: true);

                /// <summary>Two values are placed alike (the rank and origin do not matter).</summary>
                public bool SamePlacement(Value other) => Kind == other.Kind && Dim == other.Dim && IsArray == other.IsArray;

                public override string ToString() => Placement.ToString();
            }

            /// <summary>What a call site needs from the emitter, as the walk decided it.</summary>
            private abstract record Site;

            /// <summary>A partitioned layer's forward, with the resharding its input needs.</summary>
            private sealed record LayerSite(LayerVariant Variant) : Site;

            /// <summary>A view / reshape / expand of a value sharded on <paramref name="InputDim"/>: the written size at <paramref name="Dim"/> is divided by tp.</summary>
            private sealed record ShapeSite(ShapeMethod Method, int Dim, int InputDim) : Site;

            /// <summary>A functional dropout, on a sharded value (a stream per tp rank) or a replicated one (one shared stream).</summary>
            private sealed record DropoutSite(bool Sharded) : Site;

            /// <summary>A call reached with values that need nothing intercepted (a view of a whole value): no other placement may reach it.</summary>
            private sealed record PlainSite : Site;

            /// <summary>Attention of queries sharded on <paramref name="HeadDim"/> with whole keys and values: they are sliced like the queries.</summary>
            private sealed record SlicedAttentionSite(int HeadDim) : Site;

            /// <summary>A module's forward whose whole output is split along the sequence, S(-2), where a sequence-parallel consumer needs it.</summary>
            private sealed record SequenceScatterSite : Site;

            /// <summary>A LayerNorm's forward on a value sharded on <paramref name="Dim"/>: its weight and bias gradients are all-reduced over tp.</summary>
            private sealed record ShardedNormSite(int Dim) : Site;

            /// <summary>
            /// A forward of a module whose static type could hold a [ParallelModule] (a base type, an unsealed class): the walk
            /// takes its output whole, so the call checks at run time that the module it reaches returns a whole value.
            /// </summary>
            private sealed record CheckedModuleSite : Site;

            /// <summary>A cross_entropy of logits sharded on the vocabulary.</summary>
            private sealed record VocabLossSite : Site;

            /// <summary>What the placement walk found: call sites that need a variant, chunked ColumnParallel layers, every value's placement.</summary>
            private sealed class PlacementFacts
            {
                public readonly Dictionary<SyntaxNode, Site> Sites = new();
                public readonly Dictionary<string, int> Chunks = new();
                public readonly List<ValueSpec> Values = new();

                /// <summary>Producer calls a sequence-parallel consumer needs split along the sequence, found by this walk; the walk is run again with them split.</summary>
                public readonly HashSet<SyntaxNode> Demands = new();
            }

            /// <summary>What a walk knows of sequence parallelism: whether the module declares it, and the producer calls split along the sequence.</summary>
            private sealed class SequenceParallelism(bool declared, HashSet<SyntaxNode> scattered)
            {
                public bool Declared { get; } = declared;

                public HashSet<SyntaxNode> Scattered { get; } = scattered;
            }
        }
    }
}
