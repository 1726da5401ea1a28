using System;

namespace ModelParallel
{
    /// <summary>
    /// A <c>Linear</c> field whose weight is split on <c>in_features</c> over the tensor-parallel axis:
    /// input Shard(-1), local output Partial-sum. Megatron's <c>g</c> (all-reduce forward, identity
    /// backward) follows it, and the replicated bias is added once, after the reduction.
    /// </summary>
    [AttributeUsage(AttributeTargets.Field, Inherited = false)]
    public sealed class RowParallelAttribute : Attribute
    {
    }
}
