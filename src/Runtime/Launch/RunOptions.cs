using System;
using ModelParallel.Communication;

namespace ModelParallel
{
    /// <summary>Options of <see cref="Ranks.Run(MeshShape, Action{RankContext}, RunOptions?)"/>.</summary>
    public sealed record RunOptions
    {
        /// <summary>The seed layer initialisation derives its per-layer, per-shard streams from.</summary>
        public ulong Seed { get; init; } = 1234;

        /// <summary>Intra-op threads per rank when ranks share the process (torch.set_num_threads). 0 leaves it alone.</summary>
        public int ThreadsPerRank { get; init; } = 1;

        /// <summary>
        /// Whether a run of more than one rank sets glibc's allocator (Linux) to keep freed memory for reuse: one arena, no
        /// separate mapping for large blocks, no trimming. Steps then stop faulting in the pages of their large tensors anew
        /// (a GPT step at tp = 2 on threads: 9 % faster, a third fewer page faults), and the process stays at its peak
        /// size. On by default; set once per process, at its first parallel run, and not undone. Single-device runs
        /// (a mesh of one rank) never change it.
        /// </summary>
        public bool KeepFreedMemory { get; init; } = true;

        /// <summary>
        /// Model chunks per pipeline rank (virtual stages) a [PipelineStages] list is split into: 1 for GPipe and
        /// 1F1B, more for the interleaved schedule. It must match the schedule the model is run with.
        /// </summary>
        public int VirtualPipelineStages { get; init; } = 1;

        /// <summary>
        /// Under MPI, whether the ranks agree on every collective's signature (operation, dtype, shape, sequence number,
        /// call site) before its data moves: a mismatch then fails naming both sides instead of hanging or pairing
        /// different calls. On by default; it costs one small all-gather per collective (see docs/benchmarks.md). The
        /// in-process communicator always checks.
        /// </summary>
        public bool CheckCollectives { get; init; } = true;

        /// <summary>
        /// The watchdog: a collective or receive that waits longer than this fails the run with a report of where the
        /// ranks were (their last operations), instead of hanging. Generous by default (10 minutes): a slow rank is not
        /// a failure; a stopped one is.
        /// </summary>
        public TimeSpan CollectiveTimeout { get; init; } = TimeSpan.FromMinutes(10);

        /// <summary>Wraps each rank's per-axis communicators, for example in a <see cref="CountingCommunicator"/>.</summary>
        public Func<MeshAxis, ICommunicator, ICommunicator>? WrapCommunicator { get; init; }
    }
}
