using System;
using System.Runtime.InteropServices;
using ModelParallel.Communication;
using TorchSharp;
using static MPI.Unsafe;

namespace ModelParallel.Benchmarks
{
    /// <summary>
    /// One collective of a given total size, through a communicator on tensors, or raw MPI on float[] or on tensor
    /// storage. Each returns the call to time with its buffers already allocated, so that the timed call is the
    /// collective alone, on every side alike.
    /// </summary>
    internal static unsafe class Collectives
    {
        /// <summary>
        /// The communicator on tensors allocated once, like the buffers of the raw baselines. Every buffer is written
        /// when allocated (ones), the arrays too: untouched pages read as the kernel's shared zero page, which made
        /// an untouched float[] look faster than any real memory in earlier versions of this benchmark.
        /// </summary>
        public static Action Tensor(ICommunicator communicator, string op, long size)
        {
            var (send, receive) = Buffers(op, size, communicator.Size, Ones);
            return op switch
            {
                "all-reduce" => () => communicator.AllReduce(send),
                "all-gather" => () => communicator.AllGatherInto(send, receive, 0),
                _ => () => communicator.ReduceScatterInto(send, receive, 0),
            };
        }

        /// <summary>The same collective with MPI.NET's raw bindings on managed arrays, pinned once: the baseline.</summary>
        public static Action Raw(int communicator, int ranks, string op, long size)
        {
            // Written like the tensors (torch.ones): a fresh array's pages may never have been touched, and reading
            // untouched pages reads the kernel's shared zero page, which is faster than any real memory.
            var (send, receive) = Buffers(op, size, ranks, n =>
            {
                var array = new float[n];
                Array.Fill(array, 1f);
                return array;
            });
            // Pinned for the rest of the process, which these buffers live for anyway.
            IntPtr Address(float[] array) => GCHandle.Alloc(array, GCHandleType.Pinned).AddrOfPinnedObject();
            return RawCall(communicator, ranks, op, size, Address(send), Address(receive), (send, receive));
        }

        /// <summary>
        /// Raw MPI on the storage of tensors allocated like the tensor path's (libtorch's allocator, written by
        /// torch.ones), with the addresses taken once: the tensor path's memory without its wrapper.
        /// </summary>
        public static Action RawOnTensorStorage(int communicator, int ranks, string op, long size)
        {
            var (send, receive) = Buffers(op, size, ranks, Ones);
            IntPtr Address(torch.Tensor tensor) { fixed (byte* data = tensor.bytes) return (IntPtr)data; } // libtorch storage does not move
            return RawCall(communicator, ranks, op, size, Address(send), Address(receive), (send, receive));
        }

        private static torch.Tensor Ones(long size) => torch.ones(size);

        /// <summary>Send and receive buffers of one operation: all-reduce works in place on the first.</summary>
        private static (T Send, T Receive) Buffers<T>(string op, long size, int ranks, Func<long, T> allocate) => op switch
        {
            "all-reduce" => (allocate(size), allocate(0)),
            "all-gather" => (allocate(size / ranks), allocate(size)),
            _ => (allocate(size), allocate(size / ranks)),
        };

        /// <summary>The raw MPI call on two addresses; the closure keeps the buffers behind them alive.</summary>
        private static Action RawCall(int communicator, int ranks, string op, long size, IntPtr send, IntPtr receive, object buffers)
        {
            int block = (int)(size / ranks);
            var counts = new int[ranks];
            Array.Fill(counts, block);
            return op switch
            {
                "all-reduce" => () => { MPI_Allreduce(InPlace, send, (int)size, MPI_FLOAT, MPI_SUM, communicator); GC.KeepAlive(buffers); },
                "all-gather" => () => { MPI_Allgather(send, block, MPI_FLOAT, receive, block, MPI_FLOAT, communicator); GC.KeepAlive(buffers); },
                _ => () => { MPI_Reduce_scatter(send, receive, counts, MPI_FLOAT, MPI_SUM, communicator); GC.KeepAlive(buffers); },
            };
        }

        private static readonly IntPtr InPlace = new(-1); // MPICH's MPI_IN_PLACE
    }
}
