using System.Collections.Generic;

namespace ModelParallel.Checkpointing
{
    /// <summary>
    /// manifest.json of one checkpoint: the mesh it was saved on, the step, the caller's state, and for every logical
    /// tensor (parameters and optimizer state) its logical shape, dtype, placement over tp and where each saved shard lies.
    /// </summary>
    internal sealed record CheckpointManifest
    {
        /// <summary>The format's version; a reader refuses versions it does not know.</summary>
        public int Format { get; init; } = 1;
        public int Dp { get; init; }
        public int Pp { get; init; }
        public int Tp { get; init; }
        public long Step { get; init; }
        public long DataPosition { get; init; }
        /// <summary>The optimizer's type name ("Adam", "AdamW"), or null when none was saved.</summary>
        public string? Optimizer { get; init; }
        public Dictionary<string, string> Metadata { get; init; } = new();
        /// <summary>Each world rank's dropout call count (its random streams' position), restored on the same mesh.</summary>
        public List<long> DropoutCalls { get; init; } = new();
        public List<TensorRecord> Tensors { get; init; } = new();
    }

    /// <summary>One logical tensor: "blocks.0.up.weight", or its optimizer state "blocks.0.up.weight::exp_avg".</summary>
    internal sealed record TensorRecord(string Name, long[] Shape, string Dtype, string Placement, int Dim, int Chunks, List<ShardRecord> Shards);

    /// <summary>
    /// One saved shard: what tp rank <see cref="TpRank"/> of <see cref="TpSize"/> held (its slice of every block along the
    /// placement's dimension; the whole tensor when replicated), at bytes [Offset, Offset + Length) of <see cref="File"/>,
    /// with the XxHash3 (64-bit) checksum of those bytes.
    /// </summary>
    internal sealed record ShardRecord(string File, long Offset, long Length, long[] Shape, int TpRank, int TpSize, string Hash);
}
