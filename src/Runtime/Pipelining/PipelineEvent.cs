namespace ModelParallel.Pipelining
{
    /// <summary>One timed action of one rank in a pipeline step; times in microseconds from the step's start.</summary>
    public readonly record struct PipelineEvent(int Rank, PipelineActionKind Kind, int Microbatch, int Stage, double Start, double End)
    {
        /// <summary>Forward or backward: compute, as opposed to communication.</summary>
        public bool IsCompute => Kind is PipelineActionKind.Forward or PipelineActionKind.Backward;

        /// <summary>Label in traces: F3, B3, send-act 3, ...</summary>
        public string Label => Kind switch
        {
            PipelineActionKind.Forward => $"F{Microbatch}",
            PipelineActionKind.Backward => $"B{Microbatch}",
            PipelineActionKind.SendActivation => $"send-act {Microbatch}",
            PipelineActionKind.ReceiveActivation => $"recv-act {Microbatch}",
            PipelineActionKind.SendGradient => $"send-grad {Microbatch}",
            _ => $"recv-grad {Microbatch}",
        };
    }
}
