namespace ModelParallel.Pipelining
{
    /// <summary>Where a [FirstStage] or [LastStage] layer runs.</summary>
    public enum PipelineRole
    {
        /// <summary>The first virtual stage (pp rank 0, chunk 0): the embedding.</summary>
        First,

        /// <summary>The last virtual stage (pp rank pp − 1, last chunk): final norm, head.</summary>
        Last,
    }
}
