using System;

namespace ModelParallel
{
    /// <summary>A rank's body threw; the whole run was ended. The inner exception is the rank's own.</summary>
    public sealed class RankFailedException : Exception
    {
        /// <summary>Creates the exception for a failed rank.</summary>
        public RankFailedException(int rank, MeshShape mesh, Exception inner)
            : base($"Rank {rank} of {mesh.World} ({mesh}, coordinates {mesh.CoordinatesOf(rank)}) failed: {inner.GetType().Name}: {inner.Message}", inner)
        {
            Rank = rank;
        }

        /// <summary>The world rank that failed first.</summary>
        public int Rank { get; }
    }
}
