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
            for (int round = 0; round < 5; round++)
            {
                tensor[round] = Timing.Median(context.World, repetitions, () => Collectives.Tensor(context.World, op, size));
                raw[round] = Timing.Median(context.World, repetitions, () => Collectives.Raw(MPI.Unsafe.MPI_COMM_WORLD, context.World.Size, op, size));
            }
            return (tensor.OrderBy(t => t).ElementAt(2), raw.OrderBy(t => t).ElementAt(2));
        }
    }
}
