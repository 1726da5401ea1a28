using System;
using System.Runtime.ExceptionServices;
using System.Threading;
using ModelParallel.Communication;
using TorchSharp;

namespace ModelParallel
{
    /// <summary>
    /// What one rank knows about the run: its place on the mesh, a communicator per axis, the seed
    /// and the device. Partitioned layers find it through <see cref="Current"/>, which is set for the
    /// duration of the rank's body and flows with its execution context (ranks are threads in one process,
    /// or one process each): into <c>await</c> continuations, <c>Task.Run</c> and threads the body starts.
    /// </summary>
    public sealed class RankContext
    {
        // An AsyncLocal, not a [ThreadStatic]: a partitioned layer called from a task or a thread the body started
        // must see its rank, never fall back to the single-device path.
        private static readonly AsyncLocal<RankContext?> current = new();
        private long layerOrdinal;
        private long dropoutCalls;
        private long partitionedLayers;
        private ExceptionDispatchInfo? deferredFailure;

        internal RankContext(MeshShape mesh, int rank, ICommunicator world, ICommunicator dataParallel,
            ICommunicator pipelineParallel, ICommunicator tensorParallel, ulong seed, torch.Device device, int virtualPipelineStages = 1)
        {
            Mesh = mesh;
            Rank = rank;
            Coordinates = mesh.CoordinatesOf(rank);
            World = world;
            DataParallel = dataParallel;
            PipelineParallel = pipelineParallel;
            TensorParallel = tensorParallel;
            Seed = seed;
            Device = device;
            if (virtualPipelineStages < 1) throw new ArgumentOutOfRangeException(nameof(virtualPipelineStages), $"Virtual pipeline stages must be at least 1; got {virtualPipelineStages}.");
            Pipeline = new Pipelining.PipelineState(virtualPipelineStages);
        }

        /// <summary>The context of the rank whose body (or a task or thread it started) is running here, or null outside a parallel run.</summary>
        public static RankContext? Current => current.Value;

        /// <summary>The mesh of the run.</summary>
        public MeshShape Mesh { get; }

        /// <summary>This rank's world rank.</summary>
        public int Rank { get; }

        /// <summary>This rank's coordinates on the mesh.</summary>
        public MeshCoordinates Coordinates { get; }

        /// <summary>All ranks.</summary>
        public ICommunicator World { get; }

        /// <summary>The ranks that differ from this one only on the dp axis.</summary>
        public ICommunicator DataParallel { get; }

        /// <summary>The ranks that differ from this one only on the pp axis.</summary>
        public ICommunicator PipelineParallel { get; }

        /// <summary>The ranks that differ from this one only on the tp axis.</summary>
        public ICommunicator TensorParallel { get; }

        /// <summary>The run's seed; layer initialisation derives its streams from it.</summary>
        public ulong Seed { get; }

        /// <summary>The device this rank computes on: <c>cuda:local rank</c> when CUDA is available, else CPU.</summary>
        public torch.Device Device { get; }

        /// <summary>The communicator of one axis.</summary>
        public ICommunicator Axis(MeshAxis axis) => axis switch
        {
            MeshAxis.Data => DataParallel,
            MeshAxis.Pipeline => PipelineParallel,
            _ => TensorParallel,
        };

        /// <summary>True while <see cref="Ranks.Validate"/> builds the model: every layer goes to the meta device.</summary>
        internal bool Validating { get; set; }

        /// <summary>Pipeline construction and execution state of this rank.</summary>
        internal Pipelining.PipelineState Pipeline { get; }

        /// <summary>The data-parallel gradient averaging whose taps partitioned layers apply in forward (dp &gt; 1 only).</summary>
        internal DataParallel.DataParallelGradients? GradientTaps { get; set; }

        /// <summary>The parameter itself, or the parameter routed through the data-parallel gradient tap.</summary>
        internal torch.Tensor? Tapped(TorchSharp.Modules.Parameter? parameter) =>
            parameter is null ? null : GradientTaps is { } taps ? taps.Tap(parameter) : parameter;

        /// <summary>
        /// Numbers layer constructions in order. Every rank builds the same model in the same order,
        /// so the ordinal names the same layer on every rank.
        /// </summary>
        internal long NextLayerOrdinal() => layerOrdinal++;

        /// <summary>Numbers the partitioned layers this rank builds, in order (the same numbers on every rank).</summary>
        internal long NextPartitionedLayer() => partitionedLayers++;

        /// <summary>Numbers dropout calls in order; every tp rank runs the same forward, so the numbers agree.</summary>
        internal long NextDropoutCall() => dropoutCalls++;

        /// <summary>Dropout calls so far: where this rank's dropout streams are, saved and restored by a checkpoint.</summary>
        internal long DropoutCalls
        {
            get => dropoutCalls;
            set => dropoutCalls = value;
        }

        /// <summary>
        /// Records an exception thrown inside a backward collective. Exceptions cannot cross TorchSharp's
        /// native autograd engine (they would end the process), so the failing function returns a gradient of the
        /// wrong shape instead: libtorch rejects it, unwinds its engine, and <c>backward()</c> throws in the rank's own
        /// code, so no optimizer step follows a failed backward. The run reports this original failure, not libtorch's.
        /// </summary>
        internal void DeferFailure(Exception failure) => deferredFailure ??= ExceptionDispatchInfo.Capture(failure);

        /// <summary>Throws the failure recorded by <see cref="DeferFailure"/>, if any.</summary>
        internal void ThrowIfDeferredFailure() => deferredFailure?.Throw();

        /// <summary>What to report for <paramref name="thrown"/>: the backward failure that caused it, when there was one.</summary>
        internal Exception Reported(Exception thrown) => deferredFailure?.SourceException ?? thrown;

        internal static IDisposable Enter(RankContext context)
        {
            var previous = current.Value;
            current.Value = context;
            return new Restore(previous);
        }

        private sealed class Restore(RankContext? previous) : IDisposable
        {
            public void Dispose() => current.Value = previous;
        }
    }
}
