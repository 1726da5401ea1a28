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
    }
}
