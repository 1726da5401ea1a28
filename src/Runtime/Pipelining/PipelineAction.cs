using System.Collections.Generic;
using System.Linq;

namespace ModelParallel.Pipelining
{
    /// <summary>What one pipeline rank does next.</summary>
    public enum PipelineActionKind
    {
        /// <summary>Forward of one micro-batch through one local chunk (virtual stage).</summary>
        Forward,

        /// <summary>Backward of one micro-batch through one local chunk.</summary>
        Backward,

        /// <summary>Send the output of a forward to the rank of the next virtual stage.</summary>
        SendActivation,

        /// <summary>Receive the input of a forward from the rank of the previous virtual stage.</summary>
        ReceiveActivation,

        /// <summary>Send the input gradient of a backward to the rank of the previous virtual stage.</summary>
        SendGradient,

        /// <summary>Receive the output gradient of a backward from the rank of the next virtual stage.</summary>
        ReceiveGradient,
    }

    /// <summary>
    /// One step of a pipeline schedule on one rank. <see cref="Stage"/> is the virtual stage the action belongs
    /// to (chunk × pp + rank); for sends and receives, <see cref="Peer"/> is the other pp rank and
    /// <see cref="Shape"/> the tensor's shape when the schedule was built with one (empty: checked at run time).
    /// </summary>
    public sealed record PipelineAction(PipelineActionKind Kind, int Microbatch, int Stage, int Chunk, int Peer, IReadOnlyList<long> Shape)
    {
        /// <summary>Sends and receives.</summary>
        public bool IsCommunication => Kind is not (PipelineActionKind.Forward or PipelineActionKind.Backward);

        /// <summary>Activations and gradients of each chunk travel on their own tag, in micro-batch order.</summary>
        public int Tag => Kind switch
        {
            PipelineActionKind.SendActivation => 2 * (Stage + 1),
            PipelineActionKind.ReceiveActivation => 2 * Stage,
            PipelineActionKind.SendGradient => 2 * (Stage - 1) + 1,
            _ => 2 * Stage + 1,
        };

        /// <summary>Short form for messages and traces, for example <c>F3(s1)</c> or <c>send-act 3(s1)→r2</c>.</summary>
        public override string ToString() => Kind switch
        {
            PipelineActionKind.Forward => $"F{Microbatch}(s{Stage})",
            PipelineActionKind.Backward => $"B{Microbatch}(s{Stage})",
            PipelineActionKind.SendActivation => $"send-act {Microbatch}(s{Stage})→r{Peer}{ShapeText}",
            PipelineActionKind.ReceiveActivation => $"recv-act {Microbatch}(s{Stage})←r{Peer}{ShapeText}",
            PipelineActionKind.SendGradient => $"send-grad {Microbatch}(s{Stage})→r{Peer}{ShapeText}",
            _ => $"recv-grad {Microbatch}(s{Stage})←r{Peer}{ShapeText}",
        };

        private string ShapeText => Shape.Count == 0 ? "" : $" [{string.Join(", ", Shape)}]";

        /// <summary>Record equality compares shapes by value.</summary>
        public bool Equals(PipelineAction? other) =>
            other is not null && Kind == other.Kind && Microbatch == other.Microbatch && Stage == other.Stage
            && Chunk == other.Chunk && Peer == other.Peer && Shape.SequenceEqual(other.Shape);

        /// <inheritdoc/>
        public override int GetHashCode() => (Kind, Microbatch, Stage, Chunk, Peer, Shape.Count).GetHashCode();
    }
}
