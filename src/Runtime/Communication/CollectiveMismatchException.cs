using System;

namespace ModelParallel.Communication
{
    /// <summary>
    /// The ranks of a group issued different collectives (operation, shape, dtype or sequence), or one
    /// rank left while others waited for it. Reported instead of a hang.
    /// </summary>
    public sealed class CollectiveMismatchException : Exception
    {
        /// <summary>Creates the exception.</summary>
        public CollectiveMismatchException(string message) : base(message)
        {
        }
    }
}
