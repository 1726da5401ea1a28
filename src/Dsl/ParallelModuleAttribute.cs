using System;

namespace ModelParallel
{
    /// <summary>
    /// Opts a partial TorchSharp module class into partitioning. The source generator makes the
    /// class's annotated layers build only their local shard and inserts the communication their
    /// placements need into its calls. Outside <c>Ranks.Run</c> the class is the plain model.
    /// </summary>
    [AttributeUsage(AttributeTargets.Class, Inherited = false)]
    public sealed class ParallelModuleAttribute : Attribute
    {
        /// <summary>
        /// The tensor-parallel sizes the model will run with, for example <c>new[] { 1, 2, 4, 8 }</c>. Sizes written as
        /// constants (Linear features, the head count in a view) are then checked for divisibility at compile time
        /// (MP0010). Sizes only known at run time are checked when the layer is built or run, with an error naming it.
        /// </summary>
        public int[] TensorParallelSizes { get; set; } = Array.Empty<int>();

        /// <summary>
        /// Sequence parallelism (Megatron's): the residual stream of this module, what its forward takes and returns
        /// and what flows through its norms, dropout and residual adds, is split along the sequence, dimension -2, over
        /// the tp ranks (S(-2)), so each rank holds 1/tp of those activations. A ColumnParallel layer all-gathers the
        /// sequence first (backward: reduce-scatter); a RowParallel layer reduce-scatters its output along the sequence
        /// instead of all-reducing it (backward: all-gather); the gradients of LayerNorm weights and RowParallel biases,
        /// which each rank computes from its tokens only, are all-reduced over tp. Such a module is called from a
        /// [ParallelModule] parent, whose walk splits the value it passes in.
        /// </summary>
        public bool SequenceParallel { get; set; }
    }
}
