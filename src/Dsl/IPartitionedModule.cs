using System.Collections.Generic;

namespace ModelParallel
{
    /// <summary>
    /// Implemented by the generator on every <see cref="ParallelModuleAttribute"/> class: the placements
    /// of its own annotated layers' parameters. Parameters not listed are replicated. The runtime uses
    /// this to scatter and gather logical state.
    /// </summary>
    public interface IPartitionedModule
    {
        /// <summary>Placements of this module's own (not its submodules') partitioned parameters.</summary>
        IReadOnlyList<ParameterPlacement> ParameterPlacements { get; }
    }
}
