using System;
using System.Collections.Concurrent;
using System.Reflection;
using System.Runtime.CompilerServices;
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

        /// <summary>The [ParallelModule] inside a container module that the checked call cannot vouch for, per container (null: none).</summary>
        private static readonly ConditionalWeakTable<torch.nn.Module, string?> hidden = new();

        private static readonly ConditionalWeakTable<torch.nn.Module, string?>.CreateValueCallback find = Hidden;

        /// <summary><paramref name="module"/> itself, once it is known to take and return whole values.</summary>
        public static TModule Whole<TModule>(string site, TModule module) where TModule : class
        {
            var context = RankContext.Current;
            if (context is null || context.Mesh.Tp == 1 || module is not torch.nn.Module held) return module;
            if (module is IPartitionedModule { OutputPlacement: { } output } && output.Kind != PlacementKind.Replicate)
                throw new PartitionException(
                    $"{site}: '{module.GetType().Name}' is a [ParallelModule] whose forward returns {output}, but it is called through a type that does not show it, so the caller took the result for a whole value (rank {context.Coordinates.Tp}, {context.Mesh}). Declare the field or local with its own type, so the generator places its output.");
            if (sequenceParallel.GetOrAdd(module.GetType(), t => t.GetCustomAttribute<ParallelModuleAttribute>()?.SequenceParallel == true))
                throw new PartitionException(
                    $"{site}: '{module.GetType().Name}' is [ParallelModule(SequenceParallel = true)] and takes its input split along the sequence, but it is called through a type that does not show it, with a whole value (rank {context.Coordinates.Tp}, {context.Mesh}). Declare the field or local with its own type.");
            if (module is not IPartitionedModule && hidden.GetValue(held, find) is { } inside)
                throw new PartitionException(
                    $"{site}: '{module.GetType().Name}' holds the [ParallelModule] '{inside}', whose forward the generator cannot follow inside it (rank {context.Coordinates.Tp}, {context.Mesh}); call that module from the [ParallelModule]'s forward instead.");
            return module;
        }

        /// <summary>The first [ParallelModule] below <paramref name="container"/> that returns a shard or takes the stream.</summary>
        private static string? Hidden(torch.nn.Module container)
        {
            foreach (var (_, child) in container.named_modules())
            {
                if (ReferenceEquals(child, container)) continue;
                bool sequence = sequenceParallel.GetOrAdd(child.GetType(), t => t.GetCustomAttribute<ParallelModuleAttribute>()?.SequenceParallel == true);
                if (sequence || child is IPartitionedModule { OutputPlacement: { Kind: not PlacementKind.Replicate } }) return child.GetType().Name;
            }
            return null;
        }
    }
}
