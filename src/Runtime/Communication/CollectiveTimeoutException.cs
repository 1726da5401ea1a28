using System;

namespace ModelParallel.Communication
{
    /// <summary>
    /// A collective or receive waited longer than <see cref="RunOptions.CollectiveTimeout"/>: a rank stopped, hangs, or
    /// issued something else. The message says where this rank waited and, as far as this process can see, where the
    /// others were (every rank under threads; this rank's own recent operations under MPI, where each process reports).
    /// </summary>
    public sealed class CollectiveTimeoutException : Exception
    {
        /// <summary>Creates the exception with its report.</summary>
        public CollectiveTimeoutException(string message) : base(message)
        {
        }
    }
}
