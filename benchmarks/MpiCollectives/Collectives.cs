using System.Collections.Concurrent;
using ModelParallel.Communication;
using TorchSharp;
using static MPI.Unsafe;

namespace ModelParallel.Benchmarks
{
    /// <summary>One collective of a given total size, through a communicator on tensors, or raw MPI on float[].</summary>
    internal static unsafe class Collectives
    {
        private static readonly ConcurrentDictionary<(int, string, long), (torch.Tensor Input, torch.Tensor Output)> Tensors = new();
        private static readonly ConcurrentDictionary<(string, long), (float[] Send, float[] Receive)> Arrays = new();

        /// <summary>
        /// The communicator on tensors allocated once, like the arrays of the raw baseline. Every buffer is written
        /// when allocated (ones), the arrays too: untouched pages read as the kernel's shared zero page, which made
        /// an untouched float[] look faster than any real memory in earlier versions of this benchmark.
        /// </summary>
        public static void Tensor(ICommunicator communicator, string op, long size)
        {
            var (input, output) = Tensors.GetOrAdd((communicator.Rank, op, size), _ => op switch
            {
                "all-reduce" => (torch.ones(size), torch.empty(0)),
                "all-gather" => (torch.ones(size / communicator.Size), torch.ones(size)),
                _ => (torch.ones(size), torch.ones(size / communicator.Size)),
            });
            switch (op)
            {
                case "all-reduce": communicator.AllReduce(input); break;
                case "all-gather": communicator.AllGatherInto(input, output, 0); break;
                default: communicator.ReduceScatterInto(input, output, 0); break;
            }
        }

        /// <summary>The same collective with MPI.NET's raw bindings on managed arrays: the baseline.</summary>
        public static void Raw(int communicator, int ranks, string op, long size)
        {
            var (send, receive) = Arrays.GetOrAdd((op, size), _ =>
            {
                var arrays = op switch
                {
                    "all-reduce" => (new float[size], new float[0]),
                    "all-gather" => (new float[size / ranks], new float[size]),
                    _ => (new float[size], new float[size / ranks]),
                };
                // Written like the tensors (torch.ones): a fresh array's pages may never have been touched, and reading
                // untouched pages reads the kernel's shared zero page, which is faster than any real memory.
                System.Array.Fill(arrays.Item1, 1f);
                System.Array.Fill(arrays.Item2, 1f);
                return arrays;
            });
            fixed (float* s = send)
            fixed (float* r = receive)
            {
                switch (op)
                {
                    case "all-reduce": MPI_Allreduce(new System.IntPtr(-1), (System.IntPtr)s, (int)size, MPI_FLOAT, MPI_SUM, communicator); break;
                    case "all-gather": MPI_Allgather((System.IntPtr)s, (int)(size / ranks), MPI_FLOAT, (System.IntPtr)r, (int)(size / ranks), MPI_FLOAT, communicator); break;
                    default:
                        var counts = new int[ranks];
                        System.Array.Fill(counts, (int)(size / ranks));
                        MPI_Reduce_scatter((System.IntPtr)s, (System.IntPtr)r, counts, MPI_FLOAT, MPI_SUM, communicator);
                        break;
                }
            }
        }
    }
}
