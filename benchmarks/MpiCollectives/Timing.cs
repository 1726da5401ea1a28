using System;
using System.Diagnostics;
using System.Linq;
using ModelParallel.Communication;

namespace ModelParallel.Benchmarks
{
    internal static class Timing
    {
        /// <summary>
        /// Median seconds per call over samples of <paramref name="batch"/> back-to-back calls, each sample between
        /// barriers so all ranks time the same collectives: the MPI side's method (a single 1K call is shorter than the
        /// skew with which ranks leave a barrier).
        /// </summary>
        public static double Median(ICommunicator communicator, int repetitions, int batch, Action call)
        {
            // Warm-up as long as the MPI side's: tiered compilation optimizes a method after 30 calls and a quiet 100 ms,
            // and 200 calls of a few microseconds end before that, so they timed unoptimized code (118 µs at 1K).
            for (int i = 0; i < 2 * repetitions; i++) call();
            communicator.Barrier();
            System.Threading.Thread.Sleep(250);
            for (int i = 0; i < repetitions; i++) call();
            var samples = new double[repetitions];
            for (int i = 0; i < repetitions; i++)
            {
                communicator.Barrier();
                var clock = Stopwatch.StartNew();
                for (int k = 0; k < batch; k++) call();
                samples[i] = clock.Elapsed.TotalSeconds / batch;
            }
            communicator.Barrier();
            return samples.OrderBy(s => s).ElementAt(repetitions / 2);
        }
    }
}
