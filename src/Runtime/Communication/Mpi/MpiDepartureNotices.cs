using System;

namespace ModelParallel.Communication.Mpi
{
    /// <summary>
    /// Tells a rank waiting in a receive that its sender has ended its body and will send nothing more. Each rank counts
    /// the messages it sends to and receives from every peer of the communicator; when its body ends it sends each peer
    /// a notice (on a reserved tag) carrying how many messages it sent that peer. A receive that polls finds the notice
    /// of its source: when every message the source sent has already been received, the one awaited can never arrive,
    /// and the receive fails at once instead of waiting for the watchdog.
    /// </summary>
    internal sealed unsafe class MpiDepartureNotices
    {
        /// <summary>The tag the notices use: MPI's guaranteed largest tag (MPI_TAG_UB is at least 32767). User tags stay below it.</summary>
        public const int Tag = 32767;

        private readonly int handle, rank, size;
        private readonly string name;
        private readonly long[] sentTo, receivedFrom;
        private readonly long[] departedAfter; // -1 until the peer's notice is received: then the messages it sent this rank
        private readonly long[] outgoing, incoming; // pinned: MPI reads and writes them after the calls return
        private readonly int[] requests;

        public MpiDepartureNotices(int handle, string name, int rank, int size)
        {
            (this.handle, this.name, this.rank, this.size) = (handle, name, rank, size);
            sentTo = new long[size];
            receivedFrom = new long[size];
            departedAfter = new long[size];
            Array.Fill(departedAfter, -1);
            outgoing = GC.AllocateArray<long>(size, pinned: true);
            incoming = GC.AllocateArray<long>(1, pinned: true);
            requests = GC.AllocateArray<int>(size, pinned: true);
        }

        public void Sent(int destination) => sentTo[destination]++;

        public void Received(int source) => receivedFrom[source]++;

        /// <summary>Null while a message from <paramref name="source"/> may still come; otherwise why it cannot.</summary>
        public string? Unreachable(int source, string awaited)
        {
            if (departedAfter[source] < 0)
            {
                int found = 0;
                MpiLibrary.Check(MpiLibrary.Iprobe(source, Tag, handle, &found, MpiLibrary.StatusIgnore), "MPI_Iprobe (departure notice)", name);
                if (found == 0) return null;
                departedAfter[source] = ReceiveNotice(source);
            }
            return receivedFrom[source] < departedAfter[source] ? null
                : $"Rank {rank} of the {name} waits for {awaited}, but rank {source} has finished its body after sending it {departedAfter[source]} message(s), all received: sender and receiver disagree on the messages between them (a rank-dependent branch, or a schedule that is not the same on both).";
        }

        /// <summary>This rank's body has ended: sends each peer how many messages it sent it.</summary>
        public void Post()
        {
            for (int peer = 0; peer < size; peer++)
            {
                if (peer == rank) continue;
                outgoing[peer] = sentTo[peer];
                fixed (long* data = &outgoing[peer])
                fixed (int* request = &requests[peer])
                    MpiLibrary.Check(MpiLibrary.Isend((IntPtr)data, 1, MPI.Unsafe.MPI_LONG_LONG, peer, Tag, handle, request), "MPI_Isend (departure notice)", name);
            }
        }

        /// <summary>After every rank has departed: takes the peers' notices not yet taken and completes this rank's own.</summary>
        public void Finish()
        {
            for (int peer = 0; peer < size; peer++)
            {
                if (peer == rank) continue;
                if (departedAfter[peer] < 0) departedAfter[peer] = ReceiveNotice(peer);
                fixed (int* request = &requests[peer])
                    MpiLibrary.Check(MpiLibrary.Wait(request, MpiLibrary.StatusIgnore), "MPI_Wait (departure notice)", name);
            }
        }

        private long ReceiveNotice(int source)
        {
            int request;
            fixed (long* data = incoming)
            {
                MpiLibrary.Check(MpiLibrary.Irecv((IntPtr)data, 1, MPI.Unsafe.MPI_LONG_LONG, source, Tag, handle, &request), "MPI_Irecv (departure notice)", name);
                MpiLibrary.Check(MpiLibrary.Wait(&request, MpiLibrary.StatusIgnore), "MPI_Wait (departure notice)", name);
            }
            return incoming[0];
        }
    }
}
