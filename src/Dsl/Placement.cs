using System;

namespace ModelParallel
{
    /// <summary>How a tensor is laid out over one mesh axis.</summary>
    public enum PlacementKind
    {
        /// <summary>Every rank holds the whole tensor ("R").</summary>
        Replicate,
        /// <summary>Each rank holds one equal slice along a dimension ("S(d)").</summary>
        Shard,
        /// <summary>Each rank holds a summand; the logical value is the sum over ranks ("P").</summary>
        Partial,
    }

    /// <summary>A placement over one mesh axis: Replicate, Shard(dim) or Partial-sum.</summary>
    public readonly struct Placement : IEquatable<Placement>
    {
        private Placement(PlacementKind kind, int dim, int chunks = 1)
        {
            Kind = kind;
            Dim = dim;
            Chunks = chunks;
        }

        /// <summary>The kind of placement.</summary>
        public PlacementKind Kind { get; }

        /// <summary>The sharded dimension for <see cref="PlacementKind.Shard"/>; 0 otherwise.</summary>
        public int Dim { get; }

        /// <summary>
        /// For <see cref="PlacementKind.Shard"/>: the dimension is made of this many equal blocks (for example the
        /// q, k and v of a fused projection), and each block is split over the ranks; a rank holds its slice of every
        /// block, back to back. 1 for a plain shard.
        /// </summary>
        public int Chunks { get; }

        /// <summary>Every rank holds the whole tensor.</summary>
        public static Placement Replicate => new Placement(PlacementKind.Replicate, 0);

        /// <summary>Every rank holds a summand of the tensor.</summary>
        public static Placement Partial => new Placement(PlacementKind.Partial, 0);

        /// <summary>Each rank holds one equal slice along <paramref name="dim"/>.</summary>
        public static Placement Shard(int dim) => new Placement(PlacementKind.Shard, dim);

        /// <summary>Each of <paramref name="chunks"/> equal blocks along <paramref name="dim"/> is split over the ranks (see <see cref="Chunks"/>).</summary>
        public static Placement Shard(int dim, int chunks) => new Placement(PlacementKind.Shard, dim, chunks < 1 ? 1 : chunks);

        /// <inheritdoc/>
        public bool Equals(Placement other) => Kind == other.Kind && Dim == other.Dim && Chunks == other.Chunks;

        /// <inheritdoc/>
        public override bool Equals(object? obj) => obj is Placement other && Equals(other);

        /// <inheritdoc/>
        public override int GetHashCode() => (((int)Kind * 397) ^ Dim) * 31 + Chunks;

        /// <summary>The placement algebra's notation: R, S(d) or P.</summary>
        public override string ToString() => Kind switch
        {
            PlacementKind.Replicate => "R",
            PlacementKind.Shard => Chunks > 1 ? $"S({Dim}) in {Chunks} blocks" : $"S({Dim})",
            _ => "P",
        };
    }
}
