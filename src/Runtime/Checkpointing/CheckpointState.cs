using System.Collections.Generic;

namespace ModelParallel.Checkpointing
{
    /// <summary>What a training loop keeps besides the model and optimizer: the step, the data position and anything else as text.</summary>
    public sealed record CheckpointState
    {
        /// <summary>The number of optimizer steps taken; names the checkpoint (step-00000005).</summary>
        public long Step { get; init; }

        /// <summary>Where the data loader is (samples or batches consumed, as the loop counts them).</summary>
        public long DataPosition { get; init; }

        /// <summary>The caller's own values (a seed, a generator's state, the configuration).</summary>
        public IReadOnlyDictionary<string, string> Metadata { get; init; } = new Dictionary<string, string>();
    }

    /// <summary>A checkpoint that cannot be used as it is: the message names the file and the tensor.</summary>
    public sealed class CheckpointException(string message) : System.Exception(message);
}
