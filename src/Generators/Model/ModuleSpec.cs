namespace ModelParallel.Generators.Model
{
    // Pipeline models: immutable, structural equality, and no ISymbol, SyntaxNode, Compilation or
    // Location, so unchanged inputs give equal models and the generator's steps stay cached.

    /// <summary>Everything the emitter needs for one [ParallelModule] class.</summary>
    internal sealed record ModuleSpec(
        string? Namespace,
        EquatableArray<string> ContainingTypes,
        string Name,
        string DisplayName,
        bool CanEmit,
        EquatableArray<LayerSpec> Layers,
        EquatableArray<InterceptionSpec> Interceptions,
        EquatableArray<DiagnosticInfo> Diagnostics);

    /// <summary>How a layer field is partitioned over the tensor-parallel axis.</summary>
    internal enum LayerPlacement
    {
        /// <summary>Not annotated: the whole layer on every rank.</summary>
        Default,
        /// <summary>[Replicated]: the whole layer on every rank.</summary>
        Replicated,
        /// <summary>[ColumnParallel]: split on out_features.</summary>
        Column,
        /// <summary>[RowParallel]: split on in_features.</summary>
        Row,
    }

    /// <summary>A Linear field of the module and its placement.</summary>
    internal sealed record LayerSpec(string Field, LayerPlacement Placement);

    /// <summary>What an interceptor replaces.</summary>
    internal enum InterceptionKind
    {
        /// <summary>A <c>torch.nn.Linear(...)</c> call that builds a layer field.</summary>
        Factory,
        /// <summary>A <c>field.forward(x)</c> call on a partitioned layer.</summary>
        Forward,
    }

    /// <summary>One call site the generator intercepts.</summary>
    internal sealed record InterceptionSpec(
        InterceptionKind Kind,
        string Field,
        LayerPlacement Placement,
        int Version,
        string Data,
        string Where,
        string ReturnType,
        string? ReceiverType,
        EquatableArray<ParameterSpec> Parameters);

    /// <summary>A parameter of the intercepted method, as the interceptor must declare it.</summary>
    internal sealed record ParameterSpec(string Type, string Name);
}
