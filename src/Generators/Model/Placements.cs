namespace ModelParallel.Generators.Model
{
    /// <summary>How a value of forward lies over tp, as the placement walk proves it.</summary>
    internal enum ValueKind
    {
        /// <summary>Not a tensor.</summary>
        None,
        /// <summary>R: every rank holds the whole value.</summary>
        Replicate,
        /// <summary>S(d): each rank holds one slice along dimension d (counted from the end).</summary>
        Shard,
        /// <summary>P: each rank holds a summand of the value.</summary>
        Partial,
    }

    /// <summary>A proven placement over tp: R, S(dim) with dim counted from the end, or P.</summary>
    internal readonly record struct ValuePlacement(ValueKind Kind, int Dim = 0)
    {
        public static ValuePlacement Replicate => new(ValueKind.Replicate);

        public static ValuePlacement Partial => new(ValueKind.Partial);

        public static ValuePlacement Shard(int dim) => new(ValueKind.Shard, dim);

        /// <summary>The placement algebra's notation: R, S(d) or P.</summary>
        public override string ToString() => Kind switch
        {
            ValueKind.Shard => $"S({Dim})",
            ValueKind.Partial => "P",
            ValueKind.Replicate => "R",
            _ => "not a tensor",
        };
    }

    /// <summary>The resharding a partitioned layer's forward call needs before or after its local shard.</summary>
    internal enum LayerVariant
    {
        /// <summary>The input arrives as the layer expects it (Column: R, Row: S(-1)).</summary>
        Plain,
        /// <summary>ColumnParallel given S(-1): all-gather the input first.</summary>
        Gathered,
        /// <summary>RowParallel given R: a local slice first.</summary>
        Sliced,
        /// <summary>A Column or replicated layer given a partial sum: all-reduce it first.</summary>
        Reduced,
        /// <summary>RowParallel given a partial sum: reduce-scatter it first.</summary>
        ReduceScattered,
        /// <summary>RowParallel(ReduceOutput = false): the output is left a partial sum.</summary>
        Partial,
        /// <summary>RowParallel(ReduceOutput = false) given R: sliced, output left partial.</summary>
        SlicedPartial,
        /// <summary>RowParallel(ReduceOutput = false) given a partial sum: reduce-scattered, output left partial.</summary>
        ReduceScatteredPartial,
        /// <summary>ColumnParallel given S(-2), the sequence-parallel stream: all-gather the sequence first (backward: reduce-scatter).</summary>
        SequenceGathered,
        /// <summary>RowParallel in a sequence-parallel module: the partial product reduce-scattered along the sequence, S(-2) (backward: all-gather).</summary>
        SequenceScattered,
    }

    /// <summary>A shape call whose written sizes are logical, one of them divided by tp on each rank.</summary>
    internal enum ShapeMethod
    {
        /// <summary>Tensor.view(sizes).</summary>
        View,
        /// <summary>Tensor.reshape(sizes).</summary>
        Reshape,
        /// <summary>Tensor.expand(sizes).</summary>
        Expand,
    }

    /// <summary>The pipeline stage a [FirstStage] / [LastStage] field runs on (names match the runtime's PipelineRole).</summary>
    internal enum StageRole
    {
        /// <summary>[FirstStage].</summary>
        First,
        /// <summary>[LastStage].</summary>
        Last,
    }
}
