using System;

namespace ModelParallel
{
    /// <summary>A layer that runs on the first pipeline stage only (for example the embedding).</summary>
    [AttributeUsage(AttributeTargets.Field, Inherited = false)]
    public sealed class FirstStageAttribute : Attribute
    {
    }
}
