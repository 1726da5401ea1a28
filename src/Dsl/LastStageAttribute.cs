using System;

namespace ModelParallel
{
    /// <summary>A layer that runs on the last pipeline stage only (for example the final norm and the head).</summary>
    [AttributeUsage(AttributeTargets.Field, Inherited = false)]
    public sealed class LastStageAttribute : Attribute
    {
    }
}
