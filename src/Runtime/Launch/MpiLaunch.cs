using System;
using System.Linq;
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
            RefuseMismatchedWorld(mesh);
            UnrecoverableFailures.Install(() => AbortJob(1));
            var results = new T[mesh.World];
            RankContext? context = null;
            try
            {
                (context, var communicators) = CreateContext(mesh, options);
                using (RankContext.Enter(context)) results[worldRank] = body(context);
                context.ThrowIfDeferredFailure();
                Depart(communicators, context);
            }
            catch (Exception thrown)
            {
                var e = context?.Reported(thrown) ?? thrown; // a failed backward's own error, not libtorch's rejection of it
                JobOutput.ErrorLine($"ModelParallel: rank {worldRank} of {mesh.World} ({mesh}, coordinates {mesh.CoordinatesOf(worldRank)}) failed: {e.GetType().Name}: {e.Message}");
                // A partition the mesh does not allow is the user's mistake, not ours: the line above says all of it.
                bool mistake = e is PartitionException;
                if (!mistake) Console.Error.WriteLine(e.StackTrace);
                Console.Error.Flush();
                AbortJob(mistake ? 2 : 1);
                throw;
            }
            return results;
        }

        /// <summary>
        /// A mesh that does not match the process count is refused before any work, by every process together: they
        /// agree on the smallest and largest mesh any of them asked for, rank 0 says what is wrong, and all exit with
        /// code 2. No MPI_Abort: an abort tears the job down while the proxies still forward output, and in one CI run
        /// it lost every process's line.
        /// </summary>
        private static void RefuseMismatchedWorld(MeshShape mesh)
        {
            var sizes = stackalloc long[] { mesh.World, -mesh.World }; // max of both: the largest mesh and minus the smallest
            MpiLibrary.Check(MPI_Allreduce(new IntPtr(-1) /* MPI_IN_PLACE */, (IntPtr)sizes, 2, MPI_LONG_LONG, MPI_MAX, MPI_COMM_WORLD),
                "MPI_Allreduce (mesh size)");
            long largest = sizes[0], smallest = -sizes[1];
            if (largest == worldSize && smallest == worldSize) return;
            if (worldRank == 0)
                JobOutput.ErrorLine(smallest == largest
                    ? $"ModelParallel: the {mesh} needs {mesh.World} ranks, but mpiexec started {worldSize} processes."
                    : $"ModelParallel: the processes of this mpiexec job asked for different meshes ({smallest} to {largest} ranks, {worldSize} processes started); start every process with the same mesh options.");
            Environment.Exit(2); // MPI_Finalize runs at process exit
        }

        /// <summary>
        /// Ends every process of the job after this one has written why. The pause first lets Hydra's proxy read the line
        /// from this process's pipe, and lets peers failing the same way write theirs: an immediate MPI_Abort kills the
        /// processes while their output is still in the pipes, and under load a job then printed nothing at all.
        /// </summary>
        private static void AbortJob(int code)
        {
            System.Threading.Thread.Sleep(OutputGrace);
            MPI_Abort(MPI_COMM_WORLD, code);
        }

        private static readonly TimeSpan OutputGrace = TimeSpan.FromMilliseconds(300);

        private static void Initialize()
        {
            if (worldRank >= 0) return;
            // Before the library loads: UCX reads its settings when it is loaded, not at MPI_Init.
            TransportSettings.Apply();
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
            // Errors come back as codes, and become exceptions naming the call, the communicator and the rank (communicators
            // split from the world inherit it), instead of MPICH aborting with its own message.
            MpiLibrary.Check(MpiLibrary.CommSetErrhandler(MPI_COMM_WORLD, MpiLibrary.ErrorsReturn), "MPI_Comm_set_errhandler");
            AppDomain.CurrentDomain.ProcessExit += (_, _) => MPI_Finalize();
        }

        private static (RankContext Context, MpiCommunicator[] Communicators) CreateContext(MeshShape mesh, RunOptions options)
        {
            var wrap = options.WrapCommunicator ?? ((_, communicator) => communicator);
            var coordinates = mesh.CoordinatesOf(worldRank);
            var recorder = new FlightRecorder(worldRank);
            var world = new MpiCommunicator(MPI_COMM_WORLD, "world communicator", worldRank, options.CheckCollectives, recorder, options.CollectiveTimeout);
            var axes = new[] { MeshAxis.Tensor, MeshAxis.Pipeline, MeshAxis.Data }.ToDictionary(axis => axis, axis =>
            {
                // Ranks on the same line of `axis` share a color (the line's first rank); the key orders them by coordinate.
                int color = mesh.RankOf(coordinates.With(axis, 0)), line;
                MpiLibrary.Check(MPI_Comm_split(MPI_COMM_WORLD, color, coordinates.On(axis), out line), "MPI_Comm_split");
                return new MpiCommunicator(line, $"{InProcessTopology.AxisName(axis)} communicator", worldRank, options.CheckCollectives, recorder, options.CollectiveTimeout);
            });
            var device = torch.cuda.is_available() ? new torch.Device(DeviceType.CUDA, LocalRank() % torch.cuda.device_count()) : torch.CPU;
            var context = new RankContext(mesh, worldRank, world,
                wrap(MeshAxis.Data, axes[MeshAxis.Data]), wrap(MeshAxis.Pipeline, axes[MeshAxis.Pipeline]), wrap(MeshAxis.Tensor, axes[MeshAxis.Tensor]),
                options.Seed, device, options.VirtualPipelineStages);
            return (context, new[] { axes[MeshAxis.Tensor], axes[MeshAxis.Pipeline], axes[MeshAxis.Data], world });
        }

        /// <summary>
        /// This rank's body has ended: it says so on every communicator at once and waits for the others to say the same.
        /// A rank still waiting for a collective on any of them meets the departure there and fails naming it, instead of
        /// waiting forever; without collective checks, a world barrier.
        /// </summary>
        private static void Depart(MpiCommunicator[] communicators, RankContext context)
        {
            var pending = communicators.Select(c => c.PostDeparture()).ToArray();
            if (pending.Any(p => p is null))
            {
                context.World.Barrier();
                return;
            }
            foreach (var departure in pending) departure!.Complete();
            foreach (var communicator in communicators) communicator.FinishDeparture();
        }

        private static int LocalRank() =>
            int.TryParse(Environment.GetEnvironmentVariable("MPI_LOCALRANKID"), out var local) ? local : worldRank;
    }
}
