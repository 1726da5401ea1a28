using System;
using System.ComponentModel;

namespace ModelParallel
{
    /// <summary>
    /// Written by the generator on a [ParallelModule] class: how its forward's result lies over tp, as the placement walk
    /// proved it. A parent module compiled in another assembly reads it to place the sub-module's output; a
    /// [ParallelModule] from another assembly without it is refused where it is used (MP0014). Not for hand use.
    /// </summary>
    [AttributeUsage(AttributeTargets.Class, Inherited = false)]
    [EditorBrowsable(EditorBrowsableState.Never)]
    public sealed class OutputPlacementAttribute : Attribute
    {
        /// <summary>Records the placement <paramref name="kind"/> with dimension <paramref name="dim"/> (counted from the end, for a shard).</summary>
        public OutputPlacementAttribute(PlacementKind kind, int dim)
        {
            Kind = kind;
            Dim = dim;
        }

        /// <summary>Replicate or Shard.</summary>
        public PlacementKind Kind { get; }

        /// <summary>The sharded dimension, counted from the end, for a shard; 0 otherwise.</summary>
        public int Dim { get; }
    }
}
