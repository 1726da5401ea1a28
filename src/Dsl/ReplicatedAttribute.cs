using System;

namespace ModelParallel
{
    /// <summary>
    /// The explicit form of the default: every rank holds the whole layer, initialised identically.
    /// </summary>
    [AttributeUsage(AttributeTargets.Field, Inherited = false)]
    public sealed class ReplicatedAttribute : Attribute
    {
    }
}
