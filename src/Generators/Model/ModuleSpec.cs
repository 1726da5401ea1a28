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
        EquatableArray<DiagnosticInfo> Diagnostics,
        PipelineSpec? Pipeline = null,
        EquatableArray<ValueSpec> Values = default);

    /// <summary>
    /// The tp placement of a value of forward (a local, or what a return statement returns): one table drives the
    /// generated OutputPlacement, the plan comment and the partition report.
    /// </summary>
    internal sealed record ValueSpec(string Name, ValuePlacement Placement, bool EachPart = false, bool IsReturn = false)
    {
        /// <summary>The placement as the report shows it.</summary>
        public string Shown => EachPart ? $"{Placement} (each part)" : Placement.ToString();
    }

    /// <summary>The pipeline split of a module with a [PipelineStages] field.</summary>
    internal sealed record PipelineSpec(string StagesField, EquatableArray<int> Split, EquatableArray<string> First, EquatableArray<string> Last);

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
        /// <summary>[VocabParallel]: an Embedding split on its rows (the vocabulary).</summary>
        Vocab,
    }

    /// <summary>A Linear field of the module and its placement.</summary>
    internal sealed record LayerSpec(string Field, LayerPlacement Placement, int Chunks = 1, string In = "in", string Out = "out", bool HasBias = true, bool Partial = false);

    /// <summary>What an interceptor replaces.</summary>
    internal enum InterceptionKind
    {
        /// <summary>A <c>torch.nn.Linear(...)</c> call that builds a layer field.</summary>
        Factory,
        /// <summary>A <c>field.forward(x)</c> call on a Linear layer (gated by <see cref="InterceptionSpec.Role"/> when it has one).</summary>
        Forward,
        /// <summary>Any other <c>torch.nn</c> layer factory assigned to a field: built on the meta device when this rank does not run it.</summary>
        LayerFactory,
        /// <summary>A <c>field.forward(x)</c> call on a non-Linear [FirstStage] / [LastStage] layer.</summary>
        StageForward,
        /// <summary>The <c>Enumerable.Select</c> that builds the blocks of the [PipelineStages] list.</summary>
        StageBlocks,
        /// <summary>A <c>block.forward(x)</c> call in the loop over the [PipelineStages] list.</summary>
        BlockForward,
        /// <summary>A <c>view</c> / <c>reshape</c> / <c>expand</c> of a value sharded over tp: the shard's dimension is divided by tp.</summary>
        ShardedView,
        /// <summary>A <c>cross_entropy</c> of logits sharded on the vocabulary.</summary>
        VocabLoss,
        /// <summary>A <c>dropout</c>: one random stream per tp rank on sharded values, one shared stream on replicated ones.</summary>
        Dropout,
        /// <summary>A <c>scaled_dot_product_attention</c> of queries sharded on the heads (<see cref="InterceptionSpec.ShardDim"/>) with whole keys and values.</summary>
        SlicedAttention,
        /// <summary>A module's <c>forward</c> whose whole (R) output is split along the sequence (S(-2)) for a sequence-parallel consumer.</summary>
        SequenceScatter,
        /// <summary>A <c>LayerNorm</c>'s forward on a value sharded on a dimension it does not normalize: its weight and bias gradients are all-reduced over tp.</summary>
        ShardedNorm,
        /// <summary>A module's <c>forward</c> through a type that could hold a [ParallelModule]: checked at run time to return a whole value.</summary>
        CheckedModule,
    }

    /// <summary>
    /// One call site the generator intercepts. <see cref="Variant"/> is the resharding of a layer's Forward;
    /// <see cref="Shape"/> and <see cref="ShardDim"/> the method and sharded dimension of a ShardedView;
    /// <see cref="Sharded"/> whether a Dropout's input is sharded; <see cref="FactoryType"/> the torch.nn type a
    /// LayerFactory builds; <see cref="SplitCode"/> the C# array of blocks per virtual stage of StageBlocks.
    /// </summary>
    internal sealed record InterceptionSpec(
        InterceptionKind Kind,
        string Field,
        LayerPlacement Placement,
        int Version,
        string Data,
        string Where,
        string ReturnType,
        string? ReceiverType,
        EquatableArray<ParameterSpec> Parameters,
        StageRole? Role = null,
        LayerVariant Variant = LayerVariant.Plain,
        int Chunks = 1,
        ShapeMethod Shape = ShapeMethod.View,
        int ShardDim = 0,
        int InputShardDim = 0,
        bool Sharded = false,
        string? FactoryType = null,
        string? SplitCode = null);

    /// <summary>A parameter of the intercepted method, as the interceptor must declare it.</summary>
    internal sealed record ParameterSpec(string Type, string Name);
}
