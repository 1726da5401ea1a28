namespace ModelParallel
{
    /// <summary>The placement of one parameter of a partitioned module over one mesh axis.</summary>
    public sealed class ParameterPlacement
    {
        /// <summary>Creates a parameter placement.</summary>
        /// <param name="name">The parameter's name relative to its module, as in <c>state_dict</c> ("up.weight").</param>
        /// <param name="placement">How the parameter is laid out over <paramref name="axis"/>.</param>
        /// <param name="axis">The mesh axis the placement is over.</param>
        public ParameterPlacement(string name, Placement placement, MeshAxis axis)
        {
            Name = name;
            Placement = placement;
            Axis = axis;
        }

        /// <summary>The parameter's name relative to its module ("up.weight").</summary>
        public string Name { get; }

        /// <summary>How the parameter is laid out over <see cref="Axis"/>.</summary>
        public Placement Placement { get; }

        /// <summary>The mesh axis the placement is over.</summary>
        public MeshAxis Axis { get; }

        /// <inheritdoc/>
        public override string ToString() => $"{Name}: {Placement} over {Axis}";
    }
}
