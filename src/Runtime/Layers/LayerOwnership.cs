using System.ComponentModel;
using System.Runtime.CompilerServices;
using TorchSharp;

namespace ModelParallel.Layers
{
    /// <summary>
    /// Which rank built each partitioned layer. A shard is only meaningful on the rank that built it: called with no rank
    /// context (after the run, or from code the run's context does not reach) it would compute the single-device result
    /// on a fraction of the weights, and called from another rank it would pair that rank's collectives with the wrong
    /// layer. Both are refused, naming the layer.
    /// </summary>
    /// <remarks>For generated code; a model does not call this itself.</remarks>
    [EditorBrowsable(EditorBrowsableState.Never)]
    public static class LayerOwnership
    {
        private static readonly ConditionalWeakTable<torch.nn.Module, RankContext> owners = new();

        /// <summary>Records that the current rank (if any) built <paramref name="layer"/>, and returns it.</summary>
        public static T Own<T>(T layer) where T : torch.nn.Module
        {
            if (RankContext.Current is { } context) owners.AddOrUpdate(layer, context);
            return layer;
        }

        /// <summary>
        /// The context <paramref name="self"/> runs under: the current rank's when it built the layer; null for a layer
        /// built outside any run and called outside one (the plain model). Anything else is a <see cref="PartitionException"/>.
        /// </summary>
        internal static RankContext? ContextFor(string layer, torch.nn.Module self)
        {
            var current = RankContext.Current;
            if (!owners.TryGetValue(self, out var owner))
            {
                if (current is null || current.Mesh.World == 1) return current;
                throw new PartitionException(
                    $"Layer '{layer}' was built outside Ranks.Run (the whole, unpartitioned layer) but is called by rank {current.Rank} of a run on the {current.Mesh}. Build the model inside the run's body.");
            }
            if (ReferenceEquals(owner, current)) return current;
            if (current is null)
            {
                // A run of one rank builds the plain layer; using it afterwards is the single-device model.
                if (owner.Mesh.World == 1) return null;
                throw new PartitionException(
                    $"Layer '{layer}' was built by rank {owner.Rank} of a run on the {owner.Mesh}, but is called outside that rank's context (after the run ended, or from a thread started with an ExecutionContext suppressed). Call it inside the rank's body, or gather the logical weights with LogicalState.Export.");
            }
            throw new PartitionException(
                $"Layer '{layer}' was built by rank {owner.Rank} but is called by rank {current.Rank} ({current.Mesh}). Each rank must build and call its own model.");
        }
    }
}
