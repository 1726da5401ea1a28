using System;
using System.Diagnostics;
using System.Linq;

namespace ModelParallel.Benchmarks
{
    internal static class MpiMeasurements
    {
        /// <summary>
        /// Median seconds of the tensor path and of raw MPI on float[], the two calls alternating one by one
        /// (and which goes first alternating too), so that machine noise hits both alike. Both run on the
        /// world communicator of a 2-process job.
        /// </summary>
        public static (double Tensor, double Raw) Measure(RankContext context, string op, long size)
        {
            Action tensorCall = () => Collectives.Tensor(context.World, op, size);
            Action rawCall = () => Collectives.Raw(MPI.Unsafe.MPI_COMM_WORLD, context.World.Size, op, size);
            tensorCall();
            rawCall();
            int samples = 5 * Sizes.Repetitions(size);
            var tensor = new double[samples];
            var raw = new double[samples];
            for (int i = 0; i < samples; i++)
            {
                if (i % 2 == 0)
                {
                    tensor[i] = Once(context, tensorCall);
                    raw[i] = Once(context, rawCall);
                }
                else
                {
                    raw[i] = Once(context, rawCall);
                    tensor[i] = Once(context, tensorCall);
                }
            }
            return (Median(tensor), Median(raw));
        }

        private static double Once(RankContext context, Action call)
        {
            context.World.Barrier();
            var clock = Stopwatch.StartNew();
            call();
            return clock.Elapsed.TotalSeconds;
        }

        private static double Median(double[] samples) => samples.OrderBy(s => s).ElementAt(samples.Length / 2);
    }
}
