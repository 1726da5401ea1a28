using System;
using System.Diagnostics;
using System.Linq;
using ModelParallel.Communication;

namespace ModelParallel.Benchmarks
{
    internal static class Timing
    {
        /// <summary>Median seconds of one call, each call between barriers so all ranks time the same collective.</summary>
        public static double Median(ICommunicator communicator, int repetitions, Action call)
        {
            call(); // warm-up
            var samples = new double[repetitions];
            for (int i = 0; i < repetitions; i++)
            {
                communicator.Barrier();
                var clock = Stopwatch.StartNew();
                call();
                samples[i] = clock.Elapsed.TotalSeconds;
            }
            communicator.Barrier();
            return samples.OrderBy(s => s).ElementAt(repetitions / 2);
        }
    }
}
