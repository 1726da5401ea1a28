using System;
using System.Diagnostics;
using System.Linq;

namespace ModelParallel.Benchmarks
{
    internal static class MpiMeasurements
    {
        /// <summary>
        /// Median seconds per call of the tensor path, of raw MPI on float[], and of raw MPI on the storage of
        /// tensors like the tensor path's, taking turns batch by batch (and which goes first rotating too), so that
        /// machine noise hits all three alike. The third separates what our wrapper costs (tensor vs raw on tensor
        /// storage) from where the buffers lie (raw on tensor storage vs raw on float[]). All run on the world
        /// communicator of a 2-process job.
        /// </summary>
        public static double[] Measure(RankContext context, string op, long size)
        {
            var calls = new[]
            {
                Collectives.Tensor(context.World, op, size),
                Collectives.Raw(MPI.Unsafe.MPI_COMM_WORLD, context.World.Size, op, size),
                Collectives.RawOnTensorStorage(MPI.Unsafe.MPI_COMM_WORLD, context.World.Size, op, size),
            };
            foreach (var call in calls) call();
            int samples = 5 * Sizes.Repetitions(size), batch = Sizes.Batch(size);
            var seconds = calls.Select(_ => new double[samples]).ToArray();
            for (int i = 0; i < samples; i++)
                for (int k = 0; k < calls.Length; k++)
                {
                    int which = (i + k) % calls.Length;
                    seconds[which][i] = Once(context, calls[which], batch);
                }
            return seconds.Select(Median).ToArray();
        }

        /// <summary>
        /// Seconds per call over a batch of back-to-back calls between barriers (Sizes.Batch: 64 calls at 1K elements,
        /// one from 64K up), read from the raw timestamp: a single call of 1K elements takes about a microsecond, which
        /// is ten ticks of TimeSpan and within the skew with which ranks leave a barrier.
        /// </summary>
        private static double Once(RankContext context, Action call, int batch)
        {
            context.World.Barrier();
            long start = Stopwatch.GetTimestamp();
            for (int i = 0; i < batch; i++) call();
            return (Stopwatch.GetTimestamp() - start) / (double)Stopwatch.Frequency / batch;
        }

        private static double Median(double[] samples) => samples.OrderBy(s => s).ElementAt(samples.Length / 2);
    }
}
