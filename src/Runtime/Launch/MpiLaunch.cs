using System;
using ModelParallel.Communication;
using ModelParallel.Communication.Mpi;
using TorchSharp;
using static MPI.Unsafe;

namespace ModelParallel
{
    /// <summary>
    /// Runs a body as one rank of an <c>mpiexec</c> job: MPI is initialised once per process, the world is
    /// split into one communicator per mesh axis, and an exception on any rank aborts the whole job
    /// (MPI_Abort) after printing the rank and the message, so every process exits non-zero.
    /// </summary>
    internal static unsafe class MpiLaunch
    {
        private const int ThreadFunneled = 1; // MPI_THREAD_FUNNELED: every MPI call comes from the rank's main thread
        private static int worldRank = -1, worldSize;

        /// <summary>True when this process was started by MPICH's Hydra (mpiexec), which sets PMI_RANK and PMI_SIZE.</summary>
        public static bool IsUnderMpi =>
            Environment.GetEnvironmentVariable("PMI_RANK") is not null && Environment.GetEnvironmentVariable("PMI_SIZE") is not null;

        public static T[] Run<T>(MeshShape mesh, Func<RankContext, T> body, RunOptions options)
        {
            Initialize();
            if (worldSize != mesh.World)
            {
                // Every process sees the same mismatch; each reports it and aborts before any work.
                Console.Error.WriteLine($"ModelParallel: rank {worldRank}: the {mesh} needs {mesh.World} ranks, but mpiexec started {worldSize} processes.");
                Console.Error.Flush();
                MPI_Abort(MPI_COMM_WORLD, 1);
            }
            var results = new T[mesh.World];
            try
            {
                var context = CreateContext(mesh, options);
                using (RankContext.Enter(context)) results[worldRank] = body(context);
                context.ThrowIfDeferredFailure();
                context.World.Barrier();
            }
            catch (Exception e)
            {
                Console.Out.Flush();
                Console.Error.WriteLine($"ModelParallel: rank {worldRank} of {mesh.World} ({mesh}, coordinates {mesh.CoordinatesOf(worldRank)}) failed: {e.GetType().Name}: {e.Message}");
                // A partition the mesh does not allow is the user's mistake, not ours: the line above says all of it.
                bool mistake = e is PartitionException;
                if (!mistake) Console.Error.WriteLine(e.StackTrace);
                Console.Error.Flush();
                MPI_Abort(MPI_COMM_WORLD, mistake ? 2 : 1);
                throw;
            }
            return results;
        }

        private static void Initialize()
        {
            if (worldRank >= 0) return;
            try
            {
                MpiLibrary.Load();
            }
            catch (DllNotFoundException e)
            {
                // Without the library there is no MPI_Abort: say what to install, in one line, and exit non-zero.
                Console.Error.WriteLine($"ModelParallel: {e.Message}");
                Environment.Exit(1);
            }
            int argc = 0, provided;
            byte** argv = null;
            MpiLibrary.Check(MPI_Init_thread(ref argc, ref argv, ThreadFunneled, out provided), "MPI_Init_thread");
            MpiLibrary.Check(MPI_Comm_rank(MPI_COMM_WORLD, out worldRank), "MPI_Comm_rank");
            MpiLibrary.Check(MPI_Comm_size(MPI_COMM_WORLD, out worldSize), "MPI_Comm_size");
            AppDomain.CurrentDomain.ProcessExit += (_, _) => MPI_Finalize();
        }

        private static RankContext CreateContext(MeshShape mesh, RunOptions options)
        {
            var wrap = options.WrapCommunicator ?? ((_, communicator) => communicator);
            var coordinates = mesh.CoordinatesOf(worldRank);
            ICommunicator Split(MeshAxis axis)
            {
                // Ranks on the same line of `axis` share a color (the line's first rank); the key orders them by coordinate.
                int color = mesh.RankOf(coordinates.With(axis, 0)), line;
                MpiLibrary.Check(MPI_Comm_split(MPI_COMM_WORLD, color, coordinates.On(axis), out line), "MPI_Comm_split");
                return wrap(axis, new MpiCommunicator(line, $"{InProcessTopology.AxisName(axis)} communicator"));
            }
            var device = torch.cuda.is_available() ? new torch.Device(DeviceType.CUDA, LocalRank() % torch.cuda.device_count()) : torch.CPU;
            return new RankContext(mesh, worldRank, new MpiCommunicator(MPI_COMM_WORLD, "world communicator"),
                Split(MeshAxis.Data), Split(MeshAxis.Pipeline), Split(MeshAxis.Tensor), options.Seed, device, options.VirtualPipelineStages);
        }

        private static int LocalRank() =>
            int.TryParse(Environment.GetEnvironmentVariable("MPI_LOCALRANKID"), out var local) ? local : worldRank;
    }
}
