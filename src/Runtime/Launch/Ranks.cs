using System;
using System.Reflection;
using System.Threading;
using System.Threading.Tasks;
using TorchSharp;

namespace ModelParallel
{
    /// <summary>Runs a body on every rank of a mesh: the entry point of a parallel run.</summary>
    public static class Ranks
    {
        /// <summary>How long an aborted run waits for each rank thread to stop before reporting without it.</summary>
        private static readonly TimeSpan AbortGrace = TimeSpan.FromSeconds(5);

        /// <summary>
        /// Runs <paramref name="body"/> on every rank of <paramref name="mesh"/> and returns when all have
        /// finished. Started by <c>mpiexec</c>, this process is one rank of the job and the body runs once
        /// here; otherwise ranks are threads of this process. If any rank throws, the run is aborted (ranks
        /// waiting in a collective fail at once) and a <see cref="RankFailedException"/> naming the first
        /// failing rank is thrown here.
        /// </summary>
        public static void Run(MeshShape mesh, Action<RankContext> body, RunOptions? options = null)
        {
            ArgumentNullException.ThrowIfNull(body);
            Execute(mesh, context =>
            {
                body(context);
                return true;
            }, options, body.Method);
        }

        /// <summary>
        /// As <see cref="Run(MeshShape, Action{RankContext}, RunOptions?)"/>, returning each rank's result, indexed
        /// by rank. Under mpiexec a process holds only its own rank's entry; the others are default.
        /// </summary>
        public static T[] Run<T>(MeshShape mesh, Func<RankContext, T> body, RunOptions? options = null)
        {
            ArgumentNullException.ThrowIfNull(body);
            if (typeof(Task).IsAssignableFrom(typeof(T)))
                throw new ArgumentException(
                    $"The body returns a {typeof(T).Name}: each rank would end at its first await. Pass it as Func<RankContext, Task> or Func<RankContext, Task<T>> so every rank waits for it.", nameof(body));
            return Execute(mesh, body, options, body.Method);
        }

        /// <summary>
        /// As <see cref="Run(MeshShape, Action{RankContext}, RunOptions?)"/> for an <c>async</c> body: each rank waits for
        /// its body's task, and the rank's context flows into every continuation, task and thread the body starts, so
        /// partitioned layers called there still run partitioned.
        /// </summary>
        public static void Run(MeshShape mesh, Func<RankContext, Task> body, RunOptions? options = null)
        {
            ArgumentNullException.ThrowIfNull(body);
            Execute(mesh, context =>
            {
                body(context).GetAwaiter().GetResult();
                return true;
            }, options, body.Method);
        }

        /// <summary>As <see cref="Run{T}(MeshShape, Func{RankContext, T}, RunOptions?)"/> for an <c>async</c> body.</summary>
        public static T[] Run<T>(MeshShape mesh, Func<RankContext, Task<T>> body, RunOptions? options = null)
        {
            ArgumentNullException.ThrowIfNull(body);
            return Execute(mesh, context => body(context).GetAwaiter().GetResult(), options, body.Method);
        }

        /// <summary><c>default(MeshShape)</c> has no ranks: running it would run nothing and return nothing.</summary>
        private static void ThrowIfEmpty(MeshShape mesh)
        {
            if (mesh.World < 1)
                throw new ArgumentException($"The mesh has no ranks (dp={mesh.Dp}, pp={mesh.Pp}, tp={mesh.Tp}): it is default(MeshShape). Use new MeshShape(...) (each axis at least 1).", nameof(mesh));
        }

        private static T[] Execute<T>(MeshShape mesh, Func<RankContext, T> body, RunOptions? options, MethodInfo caller)
        {
            ThrowIfEmpty(mesh);
            options ??= new RunOptions();
            // Before any rank starts: a [ParallelModule] type the generator never partitioned would train unsharded.
            PartitionCheck.ThrowIfUnpartitioned(caller.Module.Assembly, mesh);
            if (mesh.World > 1 && options.KeepFreedMemory) AllocatorSettings.KeepFreedMemory();
            if (MpiLaunch.IsUnderMpi) return MpiLaunch.Run(mesh, body, options);
            UnrecoverableFailures.Install();
            var results = new T[mesh.World];
            using var abort = new CancellationTokenSource();
            var topology = new InProcessTopology(mesh, abort.Token, options.CollectiveTimeout);
            var failure = (Rank: -1, Error: (Exception?)null);
            var failureGate = new object();
            var stuck = new System.Collections.Generic.List<int>();

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
                        RankContext? context = null;
                        try
                        {
                            context = CreateContext(mesh, rank, topology, options);
                            using (RankContext.Enter(context)) results[rank] = body(context);
                            context.ThrowIfDeferredFailure();
                            topology.Depart(rank);
                        }
                        catch (Exception e) when (!(e is OperationCanceledException && abort.IsCancellationRequested))
                        {
                            lock (failureGate)
                            {
                                if (failure.Error is null) failure = (rank, context?.Reported(e) ?? e);
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
                for (int r = 0; r < threads.Length; r++)
                {
                    // Once the run is aborted, a rank stuck outside our collectives (sleeping, spinning) cannot be stopped:
                    // after a grace period it is left behind as a background thread, and the failure is reported anyway.
                    while (!threads[r].Join(TimeSpan.FromMilliseconds(200)))
                    {
                        if (!abort.IsCancellationRequested) continue;
                        if (!threads[r].Join(AbortGrace)) stuck.Add(r);
                        break;
                    }
                }
            }
            finally
            {
                if (mesh.World > 1 && options.ThreadsPerRank > 0) torch.set_num_threads(previousThreads);
            }
            if (failure.Error is not null)
                throw new RankFailedException(failure.Rank, mesh, failure.Error,
                    stuck.Count == 0 ? null : $"rank(s) {string.Join(", ", stuck)} did not stop within {AbortGrace.TotalSeconds:F0} s of the abort and were left running");
            return results;
        }

        /// <summary>
        /// Builds the model as every rank of <paramref name="mesh"/> would, on the meta device (no memory is allocated
        /// and nothing is communicated), so that each size the mesh must divide is checked before any work. Call it
        /// first, before a single-device reference or data loading, to turn a bad mesh into one readable error.
        /// </summary>
        /// <exception cref="PartitionException">A size does not divide (the message names the layer, the dimension, the
        /// size and the mesh), or the model's generated partition is missing.</exception>
        public static void Validate(MeshShape mesh, Func<torch.nn.Module> build, RunOptions? options = null)
        {
            ArgumentNullException.ThrowIfNull(build);
            ThrowIfEmpty(mesh);
            options ??= new RunOptions();
            PartitionCheck.ThrowIfUnpartitioned(build.Method.Module.Assembly, mesh);
            using var abort = new CancellationTokenSource();
            var topology = new InProcessTopology(mesh, abort.Token, options.CollectiveTimeout);
            // One rank per pipeline stage and tensor-parallel coordinate: dp replicas build the same shards.
            for (int rank = 0; rank < mesh.World; rank++)
            {
                if (mesh.CoordinatesOf(rank).Dp != 0) continue;
                var context = CreateContext(mesh, rank, topology, options);
                context.Validating = true;
                using (RankContext.Enter(context)) build().Dispose();
            }
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
