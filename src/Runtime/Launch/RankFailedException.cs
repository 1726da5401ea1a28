using System;

namespace ModelParallel
{
    /// <summary>A rank's body threw; the whole run was ended. The inner exception is the rank's own.</summary>
    public sealed class RankFailedException : Exception
    {
        /// <summary>Creates the exception for a failed rank; <paramref name="note"/> adds what else the run saw (ranks left behind).</summary>
        public RankFailedException(int rank, MeshShape mesh, Exception inner, string? note = null)
            : base($"Rank {rank} of {mesh.World} ({mesh}, coordinates {mesh.CoordinatesOf(rank)}) failed: {inner.GetType().Name}: {inner.Message}{(note is null ? "" : $" ({note})")}", inner)
        {
            Rank = rank;
        }

        /// <summary>The world rank that failed first.</summary>
        public int Rank { get; }
    }
}
