using System.Linq;

namespace ModelParallel.Benchmarks
{
    internal static class MpiMeasurements
    {
        /// <summary>
        /// Median seconds of the tensor path and of raw MPI on float[], measured in alternating rounds so that
        /// machine noise hits both alike. Both run on the world communicator of a 2-process job.
        /// </summary>
        public static (double Tensor, double Raw) Measure(RankContext context, string op, long size)
        {
            int repetitions = Sizes.Repetitions(size);
            var tensor = new double[5];
            var raw = new double[5];
            double MeasureTensor() => Timing.Median(context.World, repetitions, () => Collectives.Tensor(context.World, op, size));
            for (int round = 0; round < 5; round++)
            {
                // Alternate which variant goes first, so neither always runs on a warmer or colder machine.
                if (round % 2 == 0) tensor[round] = MeasureTensor();
                raw[round] = Timing.Median(context.World, repetitions, () => Collectives.Raw(MPI.Unsafe.MPI_COMM_WORLD, context.World.Size, op, size));
                if (round % 2 == 1) tensor[round] = MeasureTensor();
            }
            return (tensor.OrderBy(t => t).ElementAt(2), raw.OrderBy(t => t).ElementAt(2));
        }
    }
}
