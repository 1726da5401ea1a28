using System;
using System.Linq;
using System.Text;
using TorchSharp;

namespace ModelParallel.Communication.Mpi
{
    /// <summary>
    /// Before data moves, the ranks of an MPI communicator agree on what they are about to do: each contributes a
    /// fixed-size signature (operation, dtype, shape, detail, the communicator's sequence number, a hash of the call
    /// site) to one MPI_Iallgather, and every rank compares all of them. A difference fails every rank with both
    /// signatures and the call sites, instead of MPI pairing different calls (a hang, a truncated message, or silently
    /// wrong data). Nonblocking on purpose: a rank that has finished its body posts its departure on every communicator
    /// at once (<see cref="PostDeparture"/>), and a rank waiting for a collective on any of them meets it there.
    /// </summary>
    internal sealed unsafe class MpiAgreement
    {
        private const int Length = 16, MaxDimensions = 8, SiteBytes = 192;
        private const long Departure = 100;
        private readonly int handle, worldRank, size;
        private readonly string name;
        private readonly FlightRecorder recorder;
        private readonly TimeSpan timeout;
        private readonly long[] mine = new long[Length];
        private readonly long[] all;
        private long sequence;

        public MpiAgreement(int handle, string name, int worldRank, int size, FlightRecorder recorder, TimeSpan timeout)
        {
            this.handle = handle;
            this.name = name;
            this.worldRank = worldRank;
            this.size = size;
            this.recorder = recorder;
            this.timeout = timeout;
            all = new long[Length * size];
        }

        /// <summary>Agrees on a collective over <paramref name="tensor"/> (null for a barrier) before it runs.</summary>
        public void Agree(CollectiveKind kind, TensorFacts? tensor, long detail)
        {
            Fill(kind, tensor, detail);
            long recording = recorder.Begin(name, kind, mine[13]);
            fixed (long* send = mine)
            fixed (long* receive = all)
            {
                int* request = stackalloc int[1];
                Post(send, receive, request);
                MpiLibrary.Check(WaitOrTimeOut(request, name, recorder, timeout, $"{kind} #{mine[13]}"), "MPI_Iallgather (signature)", name);
            }
            recorder.End(recording);
            Compare();
        }

        /// <summary>Posts this rank's departure (it has finished its body); <see cref="PendingDeparture.Complete"/> waits and checks.</summary>
        public PendingDeparture PostDeparture()
        {
            Array.Clear(mine);
            mine[0] = worldRank;
            mine[1] = Departure;
            mine[13] = sequence++;
            var pending = new PendingDeparture(this);
            fixed (long* send = mine)
            fixed (long* receive = all)
            fixed (int* request = pending.Request)
                Post(send, receive, request);
            return pending;
        }

        /// <summary>A departure whose all-gather is under way: the buffers are this agreement's, pinned by the GC handle below.</summary>
        public sealed class PendingDeparture
        {
            private readonly MpiAgreement owner;
            private readonly System.Runtime.InteropServices.GCHandle[] pins;

            public PendingDeparture(MpiAgreement owner)
            {
                this.owner = owner;
                // MPI writes into these after Post returns: they must not move until the wait.
                pins = new[] { Pin(owner.mine), Pin(owner.all), Pin(Request) };
            }

            public int[] Request { get; } = new int[1];

            public void Complete()
            {
                try
                {
                    fixed (int* request = Request)
                        MpiLibrary.Check(WaitOrTimeOut(request, owner.name, owner.recorder, owner.timeout, "its departure (the end of its body)"), "MPI_Iallgather (departure)", owner.name);
                }
                finally
                {
                    foreach (var pin in pins) pin.Free();
                }
                owner.Compare();
            }

            private static System.Runtime.InteropServices.GCHandle Pin(object array) =>
                System.Runtime.InteropServices.GCHandle.Alloc(array, System.Runtime.InteropServices.GCHandleType.Pinned);
        }

        /// <summary>
        /// The watchdog under MPI: polls <paramref name="request"/> until it completes, or fails after the timeout with this
        /// rank's flight recorder (each process reports its own; the others' reports are in their output). Returns the
        /// request's MPI code: an error of the operation itself (a truncated message) is the caller's to describe.
        /// <paramref name="abandoned"/>, polled with the clock, gives a reason the request can never complete (its sender
        /// has departed), which fails it at once.
        /// </summary>
        public static int WaitOrTimeOut(int* request, string communicator, FlightRecorder recorder, TimeSpan timeout, string what, int* status = null, Func<string?>? abandoned = null)
        {
            long started = System.Diagnostics.Stopwatch.GetTimestamp();
            int done = 0;
            for (long polls = 0; ; polls++)
            {
                int code = MpiLibrary.Test(request, &done, status is null ? MpiLibrary.StatusIgnore : (IntPtr)status);
                if (code != MPI.Unsafe.MPI_SUCCESS || done != 0) return code;
                // The clock is read every 256 polls; a poll of a pending shared-memory request costs tens of nanoseconds.
                if ((polls & 255) != 255) continue;
                if (abandoned?.Invoke() is { } reason) throw new CollectiveMismatchException(reason);
                var waited = System.Diagnostics.Stopwatch.GetElapsedTime(started);
                if (waited >= timeout)
                    throw new CollectiveTimeoutException(
                        $"Rank {recorder.WorldRank} waited {waited.TotalSeconds:F1} s in {what} on the {communicator} (timeout {timeout.TotalSeconds:F0} s, RunOptions.CollectiveTimeout): "
                        + $"a rank of it did not get there (stopped, or in another collective or receive; each process of the job reports where it was). Where rank {recorder.WorldRank} was: {recorder.Report()}");
                if (waited > TimeSpan.FromMilliseconds(10)) System.Threading.Thread.Yield(); // a long wait leaves the core to the others
            }
        }

        private void Post(long* send, long* receive, int* request) =>
            MpiLibrary.Check(MpiLibrary.Iallgather((IntPtr)send, Length, MPI.Unsafe.MPI_LONG_LONG, (IntPtr)receive, Length, MPI.Unsafe.MPI_LONG_LONG, handle, request),
                "MPI_Iallgather (signature)", name);

        private void Fill(CollectiveKind kind, TensorFacts? tensor, long detail)
        {
            mine[0] = worldRank;
            mine[1] = (long)kind;
            if (tensor is { } t)
            {
                mine[2] = (long)t.Type;
                int dimensions = t.Dimensions;
                mine[3] = dimensions;
                for (int d = 0; d < MaxDimensions; d++) mine[4 + d] = d < dimensions ? t.Size(d) : -1;
                // Dimensions beyond eight are folded into the last slot: a difference there still shows.
                for (int d = MaxDimensions; d < dimensions; d++) mine[4 + MaxDimensions - 1] = mine[4 + MaxDimensions - 1] * 31 + t.Size(d);
            }
            else
            {
                for (int i = 2; i < 12; i++) mine[i] = -1;
            }
            mine[12] = detail;
            mine[13] = sequence++;
            mine[14] = Hash(CollectiveSite.Current);
            mine[15] = 0;
        }

        private void Compare()
        {
            for (int rank = 0; rank < size; rank++)
            {
                for (int i = 1; i < Length; i++)
                {
                    if (all[rank * Length + i] != mine[i]) Mismatch();
                }
            }
        }

        /// <summary>Every rank saw the same gathered signatures, so every rank gets here and can exchange the site names.</summary>
        private void Mismatch()
        {
            bool departed = Enumerable.Range(0, size).Any(r => all[r * Length + 1] == Departure);
            // A departed rank issues no more collectives, so the names are exchanged only when every rank is still in one.
            var sites = departed ? null : ExchangeSites();
            var lines = Enumerable.Range(0, size).Select(r => $"rank {all[r * Length]}: {Describe(r, sites?[r])}").Distinct();
            throw new CollectiveMismatchException(
                $"Collective mismatch in the {name}: the ranks issued different collectives ({string.Join("; ", lines)}).");
        }

        private string?[] ExchangeSites()
        {
            var local = new byte[SiteBytes];
            var gathered = new byte[SiteBytes * size];
            var text = Encoding.UTF8.GetBytes(CollectiveSite.Current ?? "");
            Array.Copy(text, local, Math.Min(text.Length, SiteBytes));
            fixed (byte* send = local)
            fixed (byte* receive = gathered)
            {
                int* request = stackalloc int[1];
                MpiLibrary.Check(MpiLibrary.Iallgather((IntPtr)send, SiteBytes, MPI.Unsafe.MPI_BYTE, (IntPtr)receive, SiteBytes, MPI.Unsafe.MPI_BYTE, handle, request), "MPI_Iallgather (sites)", name);
                MpiLibrary.Check(MpiLibrary.Wait(request, MpiLibrary.StatusIgnore), "MPI_Wait (sites)", name);
            }
            return Enumerable.Range(0, size).Select(r =>
            {
                var site = Encoding.UTF8.GetString(gathered, r * SiteBytes, SiteBytes).TrimEnd('\0');
                return site.Length == 0 ? null : site;
            }).ToArray();
        }

        /// <summary>"AllReduce #4 of float32[2, 8] (Sum) at 'Sample.Block.down #1'", as the in-process communicator says it.</summary>
        private string Describe(int rank, string? site)
        {
            long Slot(int i) => all[rank * Length + i];
            if (Slot(1) == Departure) return $"finished its body (after {Slot(13)} collectives on this communicator)";
            var kind = (CollectiveKind)Slot(1);
            var shape = Slot(2) < 0 ? "" : $" of {((torch.ScalarType)Slot(2)).ToString().ToLowerInvariant()}[{string.Join(", ", Enumerable.Range(0, (int)Math.Min(Slot(3), MaxDimensions)).Select(d => Slot(4 + d)))}]";
            var detail = kind switch
            {
                CollectiveKind.AllReduce or CollectiveKind.ReduceScatter => $" ({(ReduceOp)(Slot(12) & 0xFF)}{(kind == CollectiveKind.ReduceScatter ? $", dim {Slot(12) >> 8}" : "")})",
                CollectiveKind.AllGather => $" (dim {Slot(12)})",
                CollectiveKind.Broadcast => $" (root {Slot(12)})",
                _ => "",
            };
            var at = site is not null ? $" at '{site}'" : Slot(14) != 0 ? $" at site #{Slot(14):x}" : "";
            return $"{kind} #{Slot(13)}{shape}{detail}{at}";
        }

        /// <summary>FNV-1a over the site's characters: equal sites give equal hashes on every rank; none gives 0.</summary>
        private static long Hash(string? site)
        {
            if (site is null) return 0;
            ulong hash = 14695981039346656037UL;
            foreach (char c in site)
            {
                hash ^= c;
                hash *= 1099511628211UL;
            }
            return (long)(hash | 1);
        }
    }
}
