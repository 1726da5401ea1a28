using System;

namespace ModelParallel.Pipelining
{
    /// <summary>A pipeline schedule that would hang or compute the wrong thing; the message names ranks and actions.</summary>
    public sealed class InvalidPipelineScheduleException(string message) : Exception(message);
}
