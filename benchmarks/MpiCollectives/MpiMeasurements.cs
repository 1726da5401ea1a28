using System;
using System.Diagnostics;
using System.Linq;

namespace ModelParallel.Benchmarks
{
    internal static class MpiMeasurements
    {
        /// <summary>
        /// Median seconds of the tensor path and of raw MPI on float[], the two alternating batch by batch
        /// (and which goes first alternating too), so that machine noise hits both alike. Both run on the
        /// world communicator of a 2-process job.
        /// </summary>
        public static (double Tensor, double Raw) Measure(RankContext context, string op, long size)
        {
            Action tensorCall = Collectives.Tensor(context.World, op, size);
            Action rawCall = Collectives.Raw(MPI.Unsafe.MPI_COMM_WORLD, context.World.Size, op, size);
            tensorCall();
            rawCall();
            int samples = 5 * Sizes.Repetitions(size), batch = Sizes.Batch(size);
            var tensor = new double[samples];
            var raw = new double[samples];
            for (int i = 0; i < samples; i++)
            {
                if (i % 2 == 0)
                {
                    tensor[i] = Once(context, tensorCall, batch);
                    raw[i] = Once(context, rawCall, batch);
                }
                else
                {
                    raw[i] = Once(context, rawCall, batch);
                    tensor[i] = Once(context, tensorCall, batch);
                }
            }
            return (Median(tensor), Median(raw));
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
