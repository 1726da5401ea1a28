using System;
using Microsoft.CodeAnalysis;

namespace ModelParallel.Generators
{
    /// <summary>Every diagnostic of ModelParallel. Each ID has a page in docs/diagnostics.</summary>
    internal static class DiagnosticDescriptors
    {
        public const string NotPartialId = "MP0001";
        public const string UnsupportedLayerId = "MP0002";
        public const string ConflictingPlacementsId = "MP0003";
        public const string BypassedPartitionId = "MP0004";
        public const string LayerNotConstructedId = "MP0005";
        public const string InvalidStagesFieldId = "MP0006";
        public const string StagesNotBuiltId = "MP0007";
        public const string NotSequentialId = "MP0008";
        public const string InvalidStageMarkerId = "MP0009";
        public const string NotDivisibleId = "MP0010";
        public const string ShardedReductionId = "MP0011";
        public const string PartialNonLinearId = "MP0012";
        public const string PartialEscapesId = "MP0013";
        public const string UnsupportedShardedOperationId = "MP0014";
        public const string ColumnAfterColumnId = "MP0015";
        public const string ReshardInsertedId = "MP0016";
        public const string RankDependentId = "MP0017";
        public const string DirectParameterUseId = "MP0018";
        public const string ShardedResultId = "MP0019";
        public const string SequenceInputId = "MP0020";
        public const string MayReachPartitionId = "MP0021";
        public const string InternalErrorId = "MP0099";

        private const string Category = "ModelParallel";

        public static readonly DiagnosticDescriptor NotPartial = Create(NotPartialId,
            "Parallel module must be partial",
            "'{0}' must be declared partial: the generator adds the partition of its layers to it",
            "A [ParallelModule] class, and every class containing it, must be partial so the generator can add its partition plan.");

        public static readonly DiagnosticDescriptor UnsupportedLayer = Create(UnsupportedLayerId,
            "Parallel attribute on an unsupported member",
            "[{0}] on '{1}' of type '{2}': ColumnParallel, RowParallel and Replicated apply to TorchSharp.Modules.Linear fields, VocabParallel to TorchSharp.Modules.Embedding fields",
            "Sharding attributes apply to Linear fields of a [ParallelModule] class.");

        public static readonly DiagnosticDescriptor ConflictingPlacements = Create(ConflictingPlacementsId,
            "Conflicting placements",
            "'{0}' has more than one placement attribute ({1}); a layer has exactly one placement on the tp axis",
            "A layer field may carry at most one of [ColumnParallel], [RowParallel] and [Replicated].");

        public static readonly DiagnosticDescriptor BypassedPartition = Create(BypassedPartitionId,
            "Call bypasses the partition",
            "'{0}' is {1} here; the call cannot be intercepted, so it would skip the communication its {2} placement needs. Call '{0}.forward(...)' directly",
            "Only direct calls to forward on a partitioned layer get their communication. module.call(x) reaches forward inside TorchSharp, and a method group is invoked later through a delegate: neither can be intercepted.");

        public static readonly DiagnosticDescriptor LayerNotConstructed = Create(LayerNotConstructedId,
            "Partitioned layer is not built with torch.nn.Linear",
            "'{0}' is [{1}] but is never assigned torch.nn.Linear(inputSize, outputSize, ...) in a constructor or initializer of '{2}', so no shard can be built for it",
            "The generator builds the local shard by intercepting the torch.nn.Linear(...) call that creates the layer.");

        public static readonly DiagnosticDescriptor InvalidStagesField = Create(InvalidStagesFieldId,
            "Invalid [PipelineStages] field",
            "[PipelineStages] on '{0}': {1}",
            "[PipelineStages] marks the one ModuleList<Block> field of a [ParallelModule] class whose blocks are split across the pp axis; Block must itself be a [ParallelModule] class so each rank builds only its stage's layers.");

        public static readonly DiagnosticDescriptor StagesNotBuilt = Create(StagesNotBuiltId,
            "Pipeline blocks are not built in the recognised form",
            "'{0}' is [PipelineStages] but is never assigned nn.ModuleList(Enumerable.Range(0, n).Select(i => new Block(...)).ToArray()) in a constructor of '{1}', so every rank would build every block",
            "The generator builds only the local stage's blocks by intercepting the Enumerable.Select that creates them.");

        public static readonly DiagnosticDescriptor NotSequential = Create(NotSequentialId,
            "Forward is not sequential over the pipeline parts",
            "'{0}' in '{1}.forward' {2}; with [PipelineStages], forward may only chain [FirstStage] layers, one foreach over '{3}' calling block.forward, then [LastStage] layers",
            "The executor runs the single forward once per pipeline stage and lets the layers of other stages pass their input through, so anything outside those parts would run on every stage.");

        public static readonly DiagnosticDescriptor InvalidStageMarker = Create(InvalidStageMarkerId,
            "Invalid stage marker",
            "[{0}] on '{1}': {2}",
            "[FirstStage] and [LastStage] mark TorchSharp layer fields of a [ParallelModule] class that also has a [PipelineStages] list; a field has at most one of them.");

        public static readonly DiagnosticDescriptor NotDivisible = Create(NotDivisibleId,
            "Dimension not divisible by a declared tensor-parallel size",
            "{0} = {1} of {2} is not divisible by tp = {3}, one of the TensorParallelSizes declared on '{4}'",
            "A sharded dimension is split into tp equal parts, so it must be divisible by every tensor-parallel size the module declares.");

        public static readonly DiagnosticDescriptor ShardedReduction = Create(ShardedReductionId,
            "Normalization or reduction over a sharded dimension",
            "'{0}' {1} over dimension {2}, which is sharded over tp here (the value is {3}); each rank would see only its slice of it",
            "Softmax, layer norm, attention over the key or feature dimension and reductions need the whole dimension they run over. Keep that dimension unsharded: for example, normalize before the ColumnParallel layer or after the RowParallel one.");

        public static readonly DiagnosticDescriptor PartialNonLinear = Create(PartialNonLinearId,
            "Partial-sum value used non-linearly",
            "'{0}' {1} a partial sum (P, from RowParallel '{2}' with ReduceOutput = false): {3}",
            "A partial-sum value may only be combined linearly (added to another partial sum, scaled by a constant) before it is reduced. Feed it to a Linear layer (the generator reduces it there) or leave ReduceOutput at true.");

        public static readonly DiagnosticDescriptor PartialEscapes = Create(PartialEscapesId,
            "Partial-sum value escapes forward unreduced",
            "'{0}' returns a partial sum (P, from RowParallel '{1}' with ReduceOutput = false) from forward; the caller would get one rank's summand instead of the value",
            "A module's output must be whole (R) or sharded; a partial sum has to be reduced first. Feed it to a Linear layer inside forward, or leave ReduceOutput at true.");

        public static readonly DiagnosticDescriptor UnsupportedShardedOperation = Create(UnsupportedShardedOperationId,
            "Unsupported operation on a sharded value",
            "'{0}': {1}",
            "The generator follows a value's placement through the operations it has rules for (Linear layers, elementwise functions, arithmetic on equally placed values, view and reshape, transpose and permute, chunk of a ColumnParallel output, matmul and attention over sharded heads, softmax and reductions over unsharded dimensions). Operators cannot be intercepted, so a mix of placements there cannot be repaired by inserted communication.");

        public static readonly DiagnosticDescriptor ColumnAfterColumn = Create(ColumnAfterColumnId,
            "Two ColumnParallel layers in a row",
            "'{0}' is ColumnParallel but its input comes sharded from ColumnParallel '{1}': an all-gather of the activation is inserted before it (forward all-gather, backward slice); make '{0}' [RowParallel] to avoid it",
            "A ColumnParallel layer needs its whole input. After another ColumnParallel layer the input is sharded on its last dimension, so the generator gathers it, at the cost of an all-gather per forward. The Megatron pairing, Column then Row, needs none.",
            DiagnosticSeverity.Warning);

        public static readonly DiagnosticDescriptor ReshardInserted = Create(ReshardInsertedId,
            "Resharding inserted",
            "'{0}': {1} inserted for {2} (cost: {3})",
            "Where a layer needs a placement other than the one its input has, the generator inserts the cheapest legal resharding and reports it here.",
            DiagnosticSeverity.Info);

        public static readonly DiagnosticDescriptor RankDependent = Create(RankDependentId,
            "A partitioned model depends on the rank",
            "'{0}' reads the rank context inside [ParallelModule] '{1}': ranks that build or run different layers pair their collectives wrongly; the generator partitions by attributes, so the model must be the same on every rank",
            "A [ParallelModule] class is written at single-device semantics: every rank builds the same layers and runs the same forward, and the generated code alone decides what each rank holds. Code that reads RankContext inside it (a branch on the rank around a layer, a size that depends on it) makes ranks issue different collectives: silently wrong numbers when the collectives happen to match, a hang or a mismatch error when they do not. Read the rank outside the model, in the run's body.");

        public static readonly DiagnosticDescriptor DirectParameterUse = Create(DirectParameterUseId,
            "A partitioned layer's parameter used directly",
            "'{0}.{1}' of {2} layer '{0}' is used directly: each rank holds only its shard of it, so the expression sees the local shard with no communication; call '{0}.forward', or make '{0}' [Replicated]",
            "The generator inserts the communication a partitioned layer needs only around its forward. Its weight or bias read directly (a functional linear over it, a weight tied to another layer, a parameter added to a value) is the local shard: shapes differ from one device's, or worse, they match and the numbers are silently partial.");

        public static readonly DiagnosticDescriptor ShardedResult = Create(ShardedResultId,
            "A sharded module output used as a whole value",
            "'{0}' returns a value placed {1} over tp: each rank gets only its slice, not one device's whole value; {2}",
            "A [ParallelModule] whose forward ends in a ColumnParallel layer (the logits of a vocabulary-parallel head, say) returns S(-1): each rank holds its slice. Inside another [ParallelModule] the placement walk carries that shard on; code outside any [ParallelModule] would take the slice for the whole. Give such an output to VocabParallelLoss (Compute, or PipelineExecutor with one: the loss over sharded logits, never gathered), or end forward with a layer that returns a whole value.");

        public static readonly DiagnosticDescriptor SequenceInput = Create(SequenceInputId,
            "A sequence-parallel module called with a whole input",
            "'{0}' is [ParallelModule(SequenceParallel = true)]: its forward takes the residual stream split along the sequence (S(-2)) over tp, and code outside any [ParallelModule] would give every rank the whole value; call it from a [ParallelModule] parent, whose walk splits the value it passes in",
            "A sequence-parallel module's forward takes its input split along the sequence, dimension -2: each tp rank holds its slice of the tokens. A [ParallelModule] parent splits the value it passes in where that value is produced. Code outside any [ParallelModule] (a training loop, a plain wrapper) passes the whole value, which every rank would take for its slice.");

        public static readonly DiagnosticDescriptor MayReachPartition = Create(MayReachPartitionId,
            "A module call through a type that may hold a sharded or sequence-parallel module",
            "'{0}' is called through '{1}', which may hold '{2}': {3}; call it through the module's own type, so that MP0019 and MP0020 can check the call, or suppress MP0021 where it never holds one",
            "Code outside any [ParallelModule] that calls forward or call through a base type, an interface, an unsealed class or a type parameter cannot be checked against the module it reaches. When a [ParallelModule] of this compilation that returns a shard, or takes the sequence-parallel stream, converts to that type, the call may give one rank's slice to code that takes it for the whole.",
            DiagnosticSeverity.Warning);

        public static readonly DiagnosticDescriptor InternalError = Create(InternalErrorId,
            "ModelParallel generator failed",
            "The ModelParallel generator failed on '{0}': {1}. No partition was generated; please report this",
            "An internal failure of the generator, reported instead of crashing the build.");

        /// <summary>Every descriptor, for the analyzer.</summary>
        public static readonly System.Collections.Immutable.ImmutableArray<DiagnosticDescriptor> All = System.Collections.Immutable.ImmutableArray.Create(
            NotPartial, UnsupportedLayer, ConflictingPlacements, BypassedPartition, LayerNotConstructed, InvalidStagesField, StagesNotBuilt,
            NotSequential, InvalidStageMarker, NotDivisible, ShardedReduction, PartialNonLinear, PartialEscapes, UnsupportedShardedOperation, ColumnAfterColumn, ReshardInserted, RankDependent, DirectParameterUse, ShardedResult, SequenceInput, MayReachPartition, InternalError);

        /// <summary>Whether diagnostics of this ID stop the generator from emitting (errors do; warnings and infos do not).</summary>
        public static bool IsError(string id) => ById(id).DefaultSeverity == DiagnosticSeverity.Error;

        public static DiagnosticDescriptor ById(string id) => id switch
        {
            NotPartialId => NotPartial,
            UnsupportedLayerId => UnsupportedLayer,
            ConflictingPlacementsId => ConflictingPlacements,
            BypassedPartitionId => BypassedPartition,
            LayerNotConstructedId => LayerNotConstructed,
            InvalidStagesFieldId => InvalidStagesField,
            StagesNotBuiltId => StagesNotBuilt,
            NotSequentialId => NotSequential,
            InvalidStageMarkerId => InvalidStageMarker,
            NotDivisibleId => NotDivisible,
            ShardedReductionId => ShardedReduction,
            PartialNonLinearId => PartialNonLinear,
            PartialEscapesId => PartialEscapes,
            UnsupportedShardedOperationId => UnsupportedShardedOperation,
            ColumnAfterColumnId => ColumnAfterColumn,
            ReshardInsertedId => ReshardInserted,
            RankDependentId => RankDependent,
            DirectParameterUseId => DirectParameterUse,
            ShardedResultId => ShardedResult,
            SequenceInputId => SequenceInput,
            MayReachPartitionId => MayReachPartition,
            InternalErrorId => InternalError,
            _ => throw new ArgumentOutOfRangeException(nameof(id), id, "unknown diagnostic"),
        };

        private static DiagnosticDescriptor Create(string id, string title, string message, string description,
            DiagnosticSeverity severity = DiagnosticSeverity.Error) =>
            // The help link is set per build (DiagnosticHelpLinks): a page path is only meaningful on the machine that has it.
            new(id, title, message, Category, severity, isEnabledByDefault: true, description, helpLinkUri: null);
    }
}
