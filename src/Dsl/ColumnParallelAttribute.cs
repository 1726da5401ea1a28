using System;

namespace ModelParallel
{
    /// <summary>
    /// A <c>Linear</c> field whose weight and bias are split on <c>out_features</c> over the tensor-parallel
    /// axis: input Replicate, output Shard(-1). Megatron's <c>f</c> (identity forward, all-reduce backward)
    /// runs before it.
    /// </summary>
    [AttributeUsage(AttributeTargets.Field, Inherited = false)]
    public sealed class ColumnParallelAttribute : Attribute
    {
    }
}
