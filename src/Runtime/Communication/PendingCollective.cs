using System;

namespace ModelParallel.Communication
{
    /// <summary>A collective that was started and may still be running; <see cref="Wait"/> completes it once.</summary>
    public sealed class PendingCollective
    {
        private Action? complete;

        /// <summary>Wraps the action that completes the collective.</summary>
        public PendingCollective(Action complete) => this.complete = complete;

        /// <summary>A collective that already completed.</summary>
        public static PendingCollective Completed { get; } = new(() => { });

        /// <summary>Blocks until the collective has completed; later calls return at once.</summary>
        public void Wait()
        {
            var action = complete;
            complete = null;
            action?.Invoke();
        }
    }
}
