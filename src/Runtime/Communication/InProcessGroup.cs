using System;
using System.Collections.Generic;
using System.Linq;
using System.Threading;

namespace ModelParallel.Communication
{
    /// <summary>
    /// The meeting point of the threads of one in-process group: a generation barrier that can be
    /// aborted, slots where ranks post what the others read, and mailboxes for send/receive.
    /// A barrier never waits forever: it fails when the run is aborted, when a member of the group
    /// has already finished its body (it will never arrive), or after the run's collective timeout, with a report of
    /// where every member of the group was (their flight recorders).
    /// </summary>
    internal sealed class InProcessGroup
    {
        private static readonly TimeSpan Poll = TimeSpan.FromMilliseconds(50);
        private readonly object gate = new();
        private readonly bool[] departed;
        private readonly Dictionary<(int Source, int Destination, int Tag), Queue<TorchSharp.torch.Tensor>> mailboxes = new();
        private readonly CancellationToken abort;
        private readonly FlightRecorder[] recorders; // by world rank
        private readonly TimeSpan timeout;
        private readonly string?[][] signatures;
        private readonly byte[][] scratch;
        private readonly bool[] present;
        private readonly bool spins;
        private int sleepers;
        private long deliveries; // messages delivered so far: what a spinning receiver watches
        private long state; // generation << 32 | ranks arrived

        // spins: whether waiting ranks spin before they block (when every rank thread of the run has a core).
        public InProcessGroup(string name, int[] worldRanks, CancellationToken abort, FlightRecorder[] recorders, TimeSpan timeout, bool spins)
        {
            this.spins = spins;
            Name = name;
            WorldRanks = worldRanks;
            this.abort = abort;
            this.recorders = recorders;
            this.timeout = timeout;
            departed = new bool[worldRanks.Length];
            present = new bool[worldRanks.Length];
            Inputs = new object?[worldRanks.Length];
            signatures = new[] { new string?[worldRanks.Length], new string?[worldRanks.Length] };
            scratch = new byte[2 * worldRanks.Length][];
        }

        /// <summary>For messages: "tp group of ranks 0,1".</summary>
        public string Name { get; }

        /// <summary>The world rank of each group rank.</summary>
        public int[] WorldRanks { get; }

        public int Size => WorldRanks.Length;

        /// <summary>What each rank contributes to the current collective.</summary>
        public object?[] Inputs { get; }

        /// <summary>
        /// Each rank's description of the collective it is in, compared after the collective's first barrier. Two sets, by
        /// the parity of <see cref="Generation"/> at that barrier: a collective of one barrier lets a fast rank post its next
        /// signature while a slow one still compares the last, and consecutive collectives differ in parity.
        /// </summary>
        public string?[] Signatures(long generation) => signatures[generation & 1];

        /// <summary>
        /// A rank's buffer for small collectives (<see cref="ScratchBytes"/>), by the same parity: pinned, owned by the group,
        /// so a peer never reads a tensor its owner may free while unwinding from a failure.
        /// </summary>
        public unsafe byte* Scratch(int rank, long generation)
        {
            ref var buffer = ref scratch[2 * rank + (int)(generation & 1)];
            buffer ??= GC.AllocateUninitializedArray<byte>(ScratchBytes, pinned: true);
            return (byte*)System.Runtime.CompilerServices.Unsafe.AsPointer(ref System.Runtime.InteropServices.MemoryMarshal.GetArrayDataReference(buffer));
        }

        /// <summary>The largest collective, in bytes per rank, that goes through <see cref="Scratch"/>.</summary>
        public const int ScratchBytes = 64 * 1024;

        /// <summary>How many barriers the group has completed; ranks read the same value between two barriers.</summary>
        public long Generation => Volatile.Read(ref state) >> 32;

        /// <summary>
        /// Waits until every rank of the group has arrived. One word holds the barrier's generation (high half) and how many
        /// ranks have arrived (low half): the arrival that would make the count whole opens the barrier, and a rank that gives
        /// up (timeout, abort, a departed peer) takes its arrival back first, so a barrier never opens for ranks that left
        /// it. Waiting ranks spin for up to <see cref="Spin"/> when the process has a core per rank thread (a wake-up from
        /// Monitor.Wait costs tens of microseconds, more than a small collective), then block.
        /// </summary>
        public void Arrive(int rank, string what)
        {
            Volatile.Write(ref present[rank], true);
            long mine;
            while (true)
            {
                // One compare-and-swap either counts this arrival or, when it is the last, opens the barrier: the word
                // never holds a whole count, so an arrival can never land between the opening and the reset.
                long now = Volatile.Read(ref state);
                mine = now >> 32;
                bool last = (int)now + 1 == Size;
                if (last) Array.Clear(present); // every other rank is in and waits: nobody else writes it now
                if (Interlocked.CompareExchange(ref state, last ? (mine + 1) << 32 : now + 1, now) != now) continue;
                if (!last) break;
                if (Volatile.Read(ref sleepers) > 0) lock (gate) Monitor.PulseAll(gate);
                return;
            }
            if (spins)
            {
                long until = System.Diagnostics.Stopwatch.GetTimestamp() + SpinTicks;
                do
                {
                    for (int i = 0; i < 64; i++)
                    {
                        if (Opened(mine)) return;
                        Thread.SpinWait(4);
                    }
                    // no yield: on a VM a sched_yield to another runnable thread costs a time slice
                }
                while (System.Diagnostics.Stopwatch.GetTimestamp() < until);
            }
            lock (gate)
            {
                // Announce the sleep before the last look: the opener writes the state before it reads the count (a full
                // fence between), so either it sees this sleeper and pulses, or this look sees the barrier open.
                Interlocked.Increment(ref sleepers);
                try
                {
                    long started = System.Diagnostics.Stopwatch.GetTimestamp();
                    while (!Opened(mine))
                    {
                        try
                        {
                            abort.ThrowIfCancellationRequested();
                            ThrowIfAnyDeparted(rank, what);
                            ThrowIfTimedOut(rank, what, started, awaited: null);
                        }
                        catch
                        {
                            if (TryLeave(rank, mine)) throw;
                            return; // it opened while this rank gave up: every rank passes it, this one too
                        }
                        Monitor.Wait(gate, Poll);
                    }
                }
                finally
                {
                    Interlocked.Decrement(ref sleepers);
                }
            }
        }

        /// <summary>Whether the barrier of generation <paramref name="mine"/> has opened.</summary>
        private bool Opened(long mine) => Volatile.Read(ref state) >> 32 != mine;

        /// <summary>Takes this rank's arrival back, unless the barrier opened first; true when it did.</summary>
        private bool TryLeave(int rank, long mine)
        {
            while (true)
            {
                long now = Volatile.Read(ref state);
                if (now >> 32 != mine) return false;
                if (Interlocked.CompareExchange(ref state, now - 1, now) == now)
                {
                    present[rank] = false;
                    return true;
                }
            }
        }

        /// <summary>
        /// How long a waiting rank spins before it blocks: longer than a wake-up from Monitor.Wait (70–130 µs measured
        /// here). With 50 µs two ranks fell into a chain: one slept, the other arrived at the next barrier while it was
        /// still waking, gave up spinning and slept too, and every collective then cost a wake-up.
        /// </summary>
        public static readonly TimeSpan Spin = TimeSpan.FromMilliseconds(1);
        private static readonly long SpinTicks = (long)(Spin.TotalSeconds * System.Diagnostics.Stopwatch.Frequency);

        /// <summary>Marks a rank whose body has ended; ranks waiting for it fail instead of hanging.</summary>
        public void Depart(int rank)
        {
            lock (gate)
            {
                departed[rank] = true;
                Monitor.PulseAll(gate);
            }
        }

        public void Deliver(int source, int destination, int tag, TorchSharp.torch.Tensor message)
        {
            lock (gate)
            {
                var key = (source, destination, tag);
                if (!mailboxes.TryGetValue(key, out var queue)) mailboxes[key] = queue = new Queue<TorchSharp.torch.Tensor>();
                queue.Enqueue(message);
                Interlocked.Increment(ref deliveries);
                Monitor.PulseAll(gate);
            }
        }

        public TorchSharp.torch.Tensor Collect(int source, int destination, int tag)
        {
            if (spins)
            {
                // As a barrier does: a message that arrives within the spin is taken without a wake-up (70–130 µs here),
                // which a pipeline pays twice per micro-batch and stage.
                long until = System.Diagnostics.Stopwatch.GetTimestamp() + SpinTicks, seen = -1;
                do
                {
                    long now = Volatile.Read(ref deliveries);
                    if (now != seen)
                    {
                        seen = now;
                        lock (gate)
                        {
                            if (mailboxes.TryGetValue((source, destination, tag), out var ready) && ready.Count > 0) return ready.Dequeue();
                        }
                    }
                    Thread.SpinWait(16);
                }
                while (System.Diagnostics.Stopwatch.GetTimestamp() < until);
            }
            lock (gate)
            {
                long started = System.Diagnostics.Stopwatch.GetTimestamp();
                while (true)
                {
                    if (mailboxes.TryGetValue((source, destination, tag), out var queue) && queue.Count > 0) return queue.Dequeue();
                    abort.ThrowIfCancellationRequested();
                    if (departed[source])
                        throw new CollectiveMismatchException(
                            $"Rank {WorldRanks[destination]} waits to receive (tag {tag}) from rank {WorldRanks[source]} in the {Name}, but rank {WorldRanks[source]} has finished without sending it.");
                    ThrowIfTimedOut(destination, $"a receive (tag {tag}) from rank {WorldRanks[source]}", started, awaited: source);
                    Monitor.Wait(gate, Poll);
                }
            }
        }

        /// <summary>The watchdog: past the timeout, a report of where each rank the wait is for was, from its flight recorder.</summary>
        /// <remarks><paramref name="awaited"/>: the one rank a receive waits for, or null for every rank not yet at the barrier.</remarks>
        private void ThrowIfTimedOut(int rank, string what, long started, int? awaited)
        {
            var waited = System.Diagnostics.Stopwatch.GetElapsedTime(started);
            if (waited < timeout) return;
            var missing = awaited is { } one ? new[] { one } : Enumerable.Range(0, Size).Where(r => !present[r]);
            var others = string.Join("; ", missing.Select(r => $"rank {WorldRanks[r]}: {recorders[WorldRanks[r]].Last()}"));
            throw new CollectiveTimeoutException(
                $"Rank {WorldRanks[rank]} waited {waited.TotalSeconds:F1} s in {what} on the {Name} (timeout {timeout.TotalSeconds:F0} s, RunOptions.CollectiveTimeout). "
                + $"Not there: {others}. Where rank {WorldRanks[rank]} was: {recorders[WorldRanks[rank]].Report()}");
        }

        /// <summary>The flight recorder of a group rank.</summary>
        public FlightRecorder Recorder(int rank) => recorders[WorldRanks[rank]];

        private void ThrowIfAnyDeparted(int rank, string what)
        {
            for (int other = 0; other < departed.Length; other++)
            {
                if (departed[other])
                    throw new CollectiveMismatchException(
                        $"Rank {WorldRanks[rank]} waits in {what} on the {Name}, but rank {WorldRanks[other]} has finished its body and will never join it: the ranks issued different collectives.");
            }
        }
    }
}
