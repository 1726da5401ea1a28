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

        /// <summary>
        /// How forward's result lies over the tp axis, as the generator's placement walk proved it for a whole
        /// (replicated) input: <see cref="Placement.Replicate"/>, or a shard such as logits sharded on the vocabulary
        /// (<c>Shard(-1)</c>). Null when the walk cannot say (returns that differ, or no tensor). A caller that needs
        /// whole values (a loss, a metric) must not take a sharded result for a whole one.
        /// </summary>
        Placement? OutputPlacement { get; }

        /// <summary>The fields marked [FirstStage]: modules only the first pipeline stage runs (empty without pipeline stages).</summary>
        IReadOnlyList<string> FirstStageFields { get; }

        /// <summary>The fields marked [LastStage]: modules only the last pipeline stage runs (empty without pipeline stages).</summary>
        IReadOnlyList<string> LastStageFields { get; }
    }
}
