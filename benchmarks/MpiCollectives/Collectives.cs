using System;
using ModelParallel.Communication;
using TorchSharp;
using static MPI.Unsafe;

namespace ModelParallel.Benchmarks
{
    /// <summary>
    /// One collective of a given total size, through a communicator on tensors, or raw MPI on float[]. Each returns
    /// the call to time with its buffers already allocated, so that the timed call is the collective alone, on both
    /// sides alike.
    /// </summary>
    internal static unsafe class Collectives
    {
        /// <summary>
        /// The communicator on tensors allocated once, like the arrays of the raw baseline. Every buffer is written
        /// when allocated (ones), the arrays too: untouched pages read as the kernel's shared zero page, which made
        /// an untouched float[] look faster than any real memory in earlier versions of this benchmark.
        /// </summary>
        public static Action Tensor(ICommunicator communicator, string op, long size)
        {
            switch (op)
            {
                case "all-reduce":
                    var tensor = torch.ones(size);
                    return () => communicator.AllReduce(tensor);
                case "all-gather":
                    var (part, whole) = (torch.ones(size / communicator.Size), torch.ones(size));
                    return () => communicator.AllGatherInto(part, whole, 0);
                default:
                    var (input, output) = (torch.ones(size), torch.ones(size / communicator.Size));
                    return () => communicator.ReduceScatterInto(input, output, 0);
            }
        }

        /// <summary>The same collective with MPI.NET's raw bindings on managed arrays: the baseline.</summary>
        public static Action Raw(int communicator, int ranks, string op, long size)
        {
            var (send, receive) = op switch
            {
                "all-reduce" => (new float[size], new float[0]),
                "all-gather" => (new float[size / ranks], new float[size]),
                _ => (new float[size], new float[size / ranks]),
            };
            // Written like the tensors (torch.ones): a fresh array's pages may never have been touched, and reading
            // untouched pages reads the kernel's shared zero page, which is faster than any real memory.
            Array.Fill(send, 1f);
            Array.Fill(receive, 1f);
            int block = (int)(size / ranks);
            var counts = Counts(ranks, block);
            return op switch
            {
                "all-reduce" => () => { fixed (float* s = send) MPI_Allreduce(InPlace, (IntPtr)s, (int)size, MPI_FLOAT, MPI_SUM, communicator); },
                "all-gather" => () => { fixed (float* s = send) fixed (float* r = receive) MPI_Allgather((IntPtr)s, block, MPI_FLOAT, (IntPtr)r, block, MPI_FLOAT, communicator); },
                _ => () => { fixed (float* s = send) fixed (float* r = receive) MPI_Reduce_scatter((IntPtr)s, (IntPtr)r, counts, MPI_FLOAT, MPI_SUM, communicator); },
            };
        }

        /// <summary>
        /// Raw MPI on the storage of tensors allocated like the tensor path's (libtorch's allocator, written by
        /// torch.ones), with the addresses taken once: the tensor path's memory without its wrapper.
        /// </summary>
        public static Action RawOnTensorStorage(int communicator, int ranks, string op, long size)
        {
            var (send, receive) = op switch
            {
                "all-reduce" => (torch.ones(size), torch.ones(0)),
                "all-gather" => (torch.ones(size / ranks), torch.ones(size)),
                _ => (torch.ones(size), torch.ones(size / ranks)),
            };
            // libtorch storage does not move; the closures below keep both tensors alive.
            IntPtr Address(torch.Tensor tensor) { fixed (byte* data = tensor.bytes) return (IntPtr)data; }
            IntPtr s = Address(send), r = Address(receive);
            int block = (int)(size / ranks);
            var counts = Counts(ranks, block);
            return op switch
            {
                "all-reduce" => () => { MPI_Allreduce(InPlace, s, (int)size, MPI_FLOAT, MPI_SUM, communicator); GC.KeepAlive(send); },
                "all-gather" => () => { MPI_Allgather(s, block, MPI_FLOAT, r, block, MPI_FLOAT, communicator); GC.KeepAlive((send, receive)); },
                _ => () => { MPI_Reduce_scatter(s, r, counts, MPI_FLOAT, MPI_SUM, communicator); GC.KeepAlive((send, receive)); },
            };
        }

        private static readonly IntPtr InPlace = new(-1); // MPICH's MPI_IN_PLACE

        private static int[] Counts(int ranks, int block)
        {
            var counts = new int[ranks];
            Array.Fill(counts, block);
            return counts;
        }
    }
}
