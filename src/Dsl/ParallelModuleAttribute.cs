using System;

namespace ModelParallel
{
    /// <summary>
    /// Opts a partial TorchSharp module class into partitioning. The source generator makes the
    /// class's annotated layers build only their local shard and inserts the communication their
    /// placements need into its calls. Outside <c>Parallel.Run</c> the class is the plain model.
    /// </summary>
    [AttributeUsage(AttributeTargets.Class, Inherited = false)]
    public sealed class ParallelModuleAttribute : Attribute
    {
    }
}
