using System.Collections.Generic;
using System.Linq;
using System.Threading;
using ModelParallel.Communication;

namespace ModelParallel
{
    /// <summary>The in-process groups of a mesh: the world, and one group per line of each axis.</summary>
    internal sealed class InProcessTopology
    {
        private readonly MeshShape mesh;
        private readonly InProcessGroup world;
        private readonly Dictionary<(MeshAxis Axis, MeshCoordinates Line), InProcessGroup> lines = new();

        public InProcessTopology(MeshShape mesh, CancellationToken abort, System.TimeSpan timeout)
        {
            this.mesh = mesh;
            Recorders = Enumerable.Range(0, mesh.World).Select(rank => new FlightRecorder(rank)).ToArray();
            // Spinning while a peer computes only pays when no rank thread waits for the core a spinner holds.
            bool spins = mesh.World <= System.Environment.ProcessorCount;
            world = new InProcessGroup("world group", Enumerable.Range(0, mesh.World).ToArray(), abort, Recorders, timeout, spins);
            foreach (var axis in new[] { MeshAxis.Data, MeshAxis.Pipeline, MeshAxis.Tensor })
            {
                for (int rank = 0; rank < mesh.World; rank++)
                {
                    var line = mesh.CoordinatesOf(rank).With(axis, 0);
                    if (lines.ContainsKey((axis, line))) continue;
                    var members = Enumerable.Range(0, mesh.Size(axis)).Select(i => mesh.RankOf(line.With(axis, i))).ToArray();
                    lines[(axis, line)] = new InProcessGroup($"{AxisName(axis)} group of ranks {string.Join(",", members)}", members, abort, Recorders, timeout, spins);
                }
            }
        }

        /// <summary>Each world rank's flight recorder, shared by its communicators.</summary>
        public FlightRecorder[] Recorders { get; }

        public ICommunicator World(int rank) => new InProcessCommunicator(world, rank);

        public ICommunicator Axis(MeshAxis axis, int rank)
        {
            var coordinates = mesh.CoordinatesOf(rank);
            return new InProcessCommunicator(lines[(axis, coordinates.With(axis, 0))], coordinates.On(axis));
        }

        /// <summary>Tells every group of <paramref name="rank"/> that it will issue no more collectives.</summary>
        public void Depart(int rank)
        {
            world.Depart(rank);
            var coordinates = mesh.CoordinatesOf(rank);
            foreach (var ((axis, line), group) in lines)
            {
                if (coordinates.With(axis, 0) == line) group.Depart(coordinates.On(axis));
            }
        }

        internal static string AxisName(MeshAxis axis) => axis switch
        {
            MeshAxis.Data => "dp",
            MeshAxis.Pipeline => "pp",
            _ => "tp",
        };
    }
}
