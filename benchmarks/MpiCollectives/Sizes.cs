namespace ModelParallel.Benchmarks
{
    /// <summary>What is measured: element counts of the full tensor, the operations, and repetitions per size.</summary>
    internal static class Sizes
    {
        public static readonly long[] All = { 1L << 10, 1L << 14, 1L << 18, 1L << 22, 1L << 24 };

        public static readonly string[] Operations = { "all-reduce", "all-gather", "reduce-scatter" };

        /// <summary>More repetitions for small sizes, at least 5.</summary>
        public static int Repetitions(long size) => (int)System.Math.Clamp((1L << 26) / size, 5, 200);

        /// <summary>Back-to-back calls per timed sample of the MPI comparison: 64 at 1K elements, 4 at 16K, 1 from 64K up.</summary>
        public static int Batch(long size) => (int)System.Math.Clamp((1L << 16) / size, 1, 64);
    }
}
