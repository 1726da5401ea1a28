using System;
using System.Threading;
using TorchSharp;

namespace ModelParallel
{
    /// <summary>Runs a body on every rank of a mesh.</summary>
    public static class Parallel
    {
        /// <summary>
        /// Runs <paramref name="body"/> on every rank of <paramref name="mesh"/> and returns when all have
        /// finished. Started by <c>mpiexec</c>, this process is one rank of the job and the body runs once
        /// here; otherwise ranks are threads of this process. If any rank throws, the run is aborted (ranks
        /// waiting in a collective fail at once) and a <see cref="RankFailedException"/> naming the first
        /// failing rank is thrown here.
        /// </summary>
        public static void Run(MeshShape mesh, Action<RankContext> body, RunOptions? options = null) =>
            Run(mesh, context =>
            {
                body(context);
                return true;
            }, options);

        /// <summary>
        /// As <see cref="Run(MeshShape, Action{RankContext}, RunOptions?)"/>, returning each rank's result, indexed
        /// by rank. Under mpiexec a process holds only its own rank's entry; the others are default.
        /// </summary>
        public static T[] Run<T>(MeshShape mesh, Func<RankContext, T> body, RunOptions? options = null)
        {
            ArgumentNullException.ThrowIfNull(body);
            options ??= new RunOptions();
            if (MpiLaunch.IsUnderMpi) return MpiLaunch.Run(mesh, body, options);
            var results = new T[mesh.World];
            using var abort = new CancellationTokenSource();
            var topology = new InProcessTopology(mesh, abort.Token);
            var failure = (Rank: -1, Error: (Exception?)null);
            var failureGate = new object();

            int previousThreads = torch.get_num_threads();
            if (mesh.World > 1 && options.ThreadsPerRank > 0) torch.set_num_threads(options.ThreadsPerRank);
            try
            {
                var threads = new Thread[mesh.World];
                for (int r = 0; r < mesh.World; r++)
                {
                    int rank = r;
                    threads[r] = new Thread(() =>
                    {
                        try
                        {
                            var context = CreateContext(mesh, rank, topology, options);
                            using (RankContext.Enter(context)) results[rank] = body(context);
                            context.ThrowIfDeferredFailure();
                            topology.Depart(rank);
                        }
                        catch (Exception e) when (!(e is OperationCanceledException && abort.IsCancellationRequested))
                        {
                            lock (failureGate)
                            {
                                if (failure.Error is null) failure = (rank, e);
                            }
                            abort.Cancel();
                        }
                        catch (OperationCanceledException)
                        {
                            // Another rank failed first and aborted the run.
                        }
                    })
                    { Name = $"ModelParallel rank {rank}", IsBackground = true };
                }
                foreach (var thread in threads) thread.Start();
                foreach (var thread in threads) thread.Join();
            }
            finally
            {
                if (mesh.World > 1 && options.ThreadsPerRank > 0) torch.set_num_threads(previousThreads);
            }
            if (failure.Error is not null) throw new RankFailedException(failure.Rank, mesh, failure.Error);
            return results;
        }

        private static RankContext CreateContext(MeshShape mesh, int rank, InProcessTopology topology, RunOptions options)
        {
            var wrap = options.WrapCommunicator ?? ((_, communicator) => communicator);
            return new RankContext(mesh, rank, topology.World(rank),
                wrap(MeshAxis.Data, topology.Axis(MeshAxis.Data, rank)),
                wrap(MeshAxis.Pipeline, topology.Axis(MeshAxis.Pipeline, rank)),
                wrap(MeshAxis.Tensor, topology.Axis(MeshAxis.Tensor, rank)),
                options.Seed, DeviceFor(rank), options.VirtualPipelineStages);
        }

        private static torch.Device DeviceFor(int localRank) =>
            torch.cuda.is_available() ? new torch.Device(DeviceType.CUDA, localRank % torch.cuda.device_count()) : torch.CPU;
    }
}
