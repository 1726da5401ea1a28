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
        /// <summary>
        /// False leaves the output a partial sum (P) instead of reducing it right away: add partial sums together
        /// (two RowParallel outputs, or a scaled one) and the generator reduces once, where forward first needs the
        /// whole value (a Linear layer's input). A partial sum used non-linearly (MP0012) or returned from forward
        /// (MP0013) is an error. The bias is added on tp rank 0 only, so the sum over ranks has it once.
        /// </summary>
        public bool ReduceOutput { get; set; } = true;
    }
}
