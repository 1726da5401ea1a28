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
        private static readonly ConditionalWeakTable<torch.nn.Module, Owner> owners = new();

        /// <summary>Records that the current rank (if any) built <paramref name="layer"/>, and returns it.</summary>
        public static T Own<T>(T layer) where T : torch.nn.Module
        {
            if (RankContext.Current is { } context) owners.AddOrUpdate(layer, new Owner(context, context.NextPartitionedLayer()));
            return layer;
        }

        /// <summary>
        /// The rank that built a layer, and the layer's number among that rank's partitioned layers. Every rank builds
        /// the same model in the same order, so the number names the same layer instance on every rank.
        /// </summary>
        private sealed class Owner(RankContext context, long instance)
        {
            public RankContext Context { get; } = context;

            /// <summary>"Sample.Block.down #3": the collective site of this instance, made on first use.</summary>
            public string? Site { get; set; }

            public long Instance { get; } = instance;
        }

        /// <summary>
        /// The context <paramref name="self"/> runs under: the current rank's when it built the layer; null for a layer
        /// built outside any run and called outside one (the plain model). Anything else is a <see cref="PartitionException"/>.
        /// <paramref name="site"/> names this layer instance in the signatures of the collectives it issues.
        /// </summary>
        internal static RankContext? ContextFor(string layer, torch.nn.Module self, out string site)
        {
            var current = RankContext.Current;
            site = layer;
            if (!owners.TryGetValue(self, out var owner))
            {
                if (current is null || current.Mesh.World == 1) return current;
                throw new PartitionException(
                    $"Layer '{layer}' was built outside Ranks.Run (the whole, unpartitioned layer) but is called by rank {current.Rank} of a run on the {current.Mesh}. Build the model inside the run's body.");
            }
            if (ReferenceEquals(owner.Context, current))
            {
                site = owner.Site ??= $"{layer} #{owner.Instance}";
                return current;
            }
            if (current is null)
            {
                // A run of one rank builds the plain layer; using it afterwards is the single-device model.
                if (owner.Context.Mesh.World == 1) return null;
                throw new PartitionException(
                    $"Layer '{layer}' was built by rank {owner.Context.Rank} of a run on the {owner.Context.Mesh}, but is called outside that rank's context (after the run ended, or from a thread started with an ExecutionContext suppressed). Call it inside the rank's body, or gather the logical weights with LogicalState.Export.");
            }
            throw new PartitionException(
                $"Layer '{layer}' was built by rank {owner.Context.Rank} but is called by rank {current.Rank} ({current.Mesh}). Each rank must build and call its own model.");
        }
    }
}
