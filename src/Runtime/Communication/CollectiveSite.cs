using System;

namespace ModelParallel.Communication
{
    /// <summary>
    /// Where in the model the collectives being issued come from ("Sample.Block.down", "Sample.Block.up (backward)",
    /// "dp gradient bucket 2"). Part of every collective's signature, so ranks that reach the same kind of collective
    /// from different places (one skipped a layer, or took another branch) are told apart even when operation, dtype
    /// and shape agree. Set around a partitioned layer's forward and, through its autograd functions, its backward.
    /// </summary>
    internal static class CollectiveSite
    {
        [ThreadStatic] private static string? current;

        /// <summary>The site of the collectives issued on this thread now; null outside any partitioned layer.</summary>
        public static string? Current => current;

        /// <summary>Makes <paramref name="site"/> current until the returned scope is disposed.</summary>
        public static Scope Enter(string? site)
        {
            var previous = current;
            current = site;
            return new Scope(previous);
        }

        public readonly struct Scope(string? previous) : IDisposable
        {
            public void Dispose() => current = previous;
        }
    }
}
