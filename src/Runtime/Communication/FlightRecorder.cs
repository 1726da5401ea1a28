using System;
using System.Diagnostics;
using System.Linq;
using System.Text;

namespace ModelParallel.Communication
{
    /// <summary>
    /// The last collectives and point-to-point messages one rank issued, with when each started and ended: what a
    /// watchdog report says about a rank (like NCCL's flight recorder, but printed for the user). Recording is a few
    /// field writes into a ring of structs, no allocation; the text is made only for a report.
    /// </summary>
    internal sealed class FlightRecorder
    {
        public const int Capacity = 16;
        private readonly Entry[] entries = new Entry[Capacity];
        private readonly object gate = new();
        private long count;

        public FlightRecorder(int worldRank) => WorldRank = worldRank;

        public int WorldRank { get; }

        private struct Entry
        {
            public string Communicator;
            public CollectiveKind Kind;
            public long Sequence;
            public string? Site;
            public string? Description;
            public long Started;
            public long Ended;
        }

        /// <summary>
        /// Records the start of an operation; returns its number for <see cref="End"/>. <paramref name="description"/>, when
        /// the caller has one already (the in-process signature), replaces the kind, sequence and site in reports.
        /// </summary>
        public long Begin(string communicator, CollectiveKind kind, long sequence, string? description = null)
        {
            lock (gate)
            {
                long number = count++;
                entries[number % Capacity] = new Entry
                {
                    Communicator = communicator, Kind = kind, Sequence = sequence, Site = CollectiveSite.Current, Description = description,
                    Started = Stopwatch.GetTimestamp(),
                };
                return number;
            }
        }

        public void End(long number)
        {
            lock (gate)
            {
                if (number > count - Capacity) entries[number % Capacity].Ended = Stopwatch.GetTimestamp();
            }
        }

        /// <summary>The operation this rank is in now, or its last one: "AllReduce #12 ... (waiting for 5.0 s)".</summary>
        public string Last()
        {
            lock (gate)
                return count == 0 ? "no collective yet" : Describe(entries[(count - 1) % Capacity], Stopwatch.GetTimestamp());
        }

        /// <summary>The recorded operations, oldest first, one per line.</summary>
        public string Report()
        {
            lock (gate)
            {
                long now = Stopwatch.GetTimestamp();
                var text = new StringBuilder($"rank {WorldRank}, last {Math.Min(count, Capacity)} of {count} operations:");
                for (long n = Math.Max(0, count - Capacity); n < count; n++)
                    text.Append("\n  ").Append(Describe(entries[n % Capacity], now));
                return text.ToString();
            }
        }

        private static string Describe(Entry entry, long now)
        {
            var what = entry.Description ?? $"{entry.Kind} #{entry.Sequence}{(entry.Site is null ? "" : $" at '{entry.Site}'")}";
            var state = entry.Ended == 0
                ? $"waiting for {Stopwatch.GetElapsedTime(entry.Started, now).TotalSeconds:F1} s"
                : $"done in {Stopwatch.GetElapsedTime(entry.Started, entry.Ended).TotalMilliseconds:F2} ms, {Stopwatch.GetElapsedTime(entry.Ended, now).TotalSeconds:F1} s ago";
            return $"{what} on the {entry.Communicator} ({state})";
        }
    }
}
