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
        private readonly bool[] present;
        private int arrived;
        private long generation;

        public InProcessGroup(string name, int[] worldRanks, CancellationToken abort, FlightRecorder[] recorders, TimeSpan timeout)
        {
            Name = name;
            WorldRanks = worldRanks;
            this.abort = abort;
            this.recorders = recorders;
            this.timeout = timeout;
            departed = new bool[worldRanks.Length];
            present = new bool[worldRanks.Length];
            Inputs = new object?[worldRanks.Length];
            Outputs = new object?[worldRanks.Length];
            Signatures = new string?[worldRanks.Length];
        }

        /// <summary>For messages: "tp group of ranks 0,1".</summary>
        public string Name { get; }

        /// <summary>The world rank of each group rank.</summary>
        public int[] WorldRanks { get; }

        public int Size => WorldRanks.Length;

        /// <summary>What each rank contributes to the current collective.</summary>
        public object?[] Inputs { get; }

        /// <summary>What each rank computed for the others in the current collective.</summary>
        public object?[] Outputs { get; }

        /// <summary>Each rank's description of the collective it is in, compared at the first barrier.</summary>
        public string?[] Signatures { get; }

        /// <summary>Waits until every rank of the group has arrived.</summary>
        public void Arrive(int rank, string what)
        {
            lock (gate)
            {
                long mine = generation;
                present[rank] = true;
                if (++arrived == Size)
                {
                    arrived = 0;
                    generation++;
                    Array.Clear(present);
                    Monitor.PulseAll(gate);
                    return;
                }
                long started = System.Diagnostics.Stopwatch.GetTimestamp();
                while (generation == mine)
                {
                    abort.ThrowIfCancellationRequested();
                    ThrowIfAnyDeparted(rank, what);
                    ThrowIfTimedOut(rank, what, started, awaited: null);
                    Monitor.Wait(gate, Poll);
                }
            }
        }

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
                Monitor.PulseAll(gate);
            }
        }

        public TorchSharp.torch.Tensor Collect(int source, int destination, int tag)
        {
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
