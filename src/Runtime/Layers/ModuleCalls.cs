using System;
using System.Collections.Concurrent;
using System.Reflection;
using TorchSharp;

namespace ModelParallel.Layers
{
    /// <summary>
    /// What the generated interceptor calls for a module's forward whose static type (nn.Module&lt;T, TResult&gt;, an
    /// unsealed class) could hold a [ParallelModule] the placement walk cannot see: the walk took its input and output as
    /// whole values, so inside a run on more than one tp rank the module it reaches must not be one that returns a shard
    /// or takes the sequence-parallel stream.
    /// </summary>
    public static class ModuleCalls
    {
        private static readonly ConcurrentDictionary<Type, bool> sequenceParallel = new();

        /// <summary><paramref name="module"/> itself, once it is known to take and return whole values.</summary>
        public static TModule Whole<TModule>(string site, TModule module) where TModule : torch.nn.Module
        {
            var context = RankContext.Current;
            if (context is null || context.Mesh.Tp == 1) return module;
            if (module is IPartitionedModule { OutputPlacement: { } output } && output.Kind != PlacementKind.Replicate)
                throw new PartitionException(
                    $"{site}: '{module.GetType().Name}' is a [ParallelModule] whose forward returns {output}, but it is called through a type that does not show it, so the caller took the result for a whole value (rank {context.Coordinates.Tp}, {context.Mesh}). Declare the field or local with its own type, so the generator places its output.");
            if (sequenceParallel.GetOrAdd(module.GetType(), t => t.GetCustomAttribute<ParallelModuleAttribute>()?.SequenceParallel == true))
                throw new PartitionException(
                    $"{site}: '{module.GetType().Name}' is [ParallelModule(SequenceParallel = true)] and takes its input split along the sequence, but it is called through a type that does not show it, with a whole value (rank {context.Coordinates.Tp}, {context.Mesh}). Declare the field or local with its own type.");
            return module;
        }
    }
}
