using System;

namespace ModelParallel
{
    /// <summary>
    /// The model cannot be partitioned as asked: a size not divisible by the mesh, a partitioned layer used outside the
    /// rank that built it, or a partitioned type whose generated partition is missing. The message names the layer or
    /// type, the sizes and the mesh, in one line meant for the user.
    /// </summary>
    public sealed class PartitionException : Exception
    {
        /// <summary>Creates the exception with its one-line message.</summary>
        public PartitionException(string message) : base(message)
        {
        }
    }
}
