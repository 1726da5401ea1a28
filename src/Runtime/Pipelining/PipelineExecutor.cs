using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Linq;
using ModelParallel.Communication;
using TorchSharp;

namespace ModelParallel.Pipelining
{
    /// <summary>
    /// Runs a <see cref="PipelineSchedule"/> on this rank: splits the batch into micro-batches, runs the actions
    /// in order (forward and backward of its chunks, activations and gradients to and from the neighbouring
    /// stages), computes the loss on the last stage, and leaves the gradients of the whole batch accumulated in
    /// the parameters of this rank's layers, ready for the optimizer. Works on the in-process and MPI
    /// communicators alike, and with tp and dp: tp collectives run inside the layers; dp averaging (when a
    /// <see cref="DataParallel.DataParallelGradients"/> is attached) starts after the step's last forward.
    /// </summary>
    public sealed partial class PipelineExecutor
    {
        private readonly torch.nn.Module<torch.Tensor, torch.Tensor> model;
        private readonly Func<torch.Tensor, torch.Tensor, torch.Tensor> loss;
        private readonly RankContext context;
        private readonly ICommunicator pipeline;
        private readonly int lastForward;

        /// <summary>
        /// Validates <paramref name="schedule"/> against the mesh and the model's split; throws before any work when they disagree.
        /// <paramref name="loss"/> sees whole outputs: a model whose forward returns a tp shard (its generated
        /// <see cref="IPartitionedModule.OutputPlacement"/> is a Shard) is refused at tp &gt; 1; give it a <see cref="Layers.VocabParallelLoss"/>.
        /// </summary>
        public PipelineExecutor(torch.nn.Module<torch.Tensor, torch.Tensor> model, PipelineSchedule schedule, Func<torch.Tensor, torch.Tensor, torch.Tensor> loss)
            : this(model, schedule, loss, shardedLoss: false)
        {
        }

        /// <summary>
        /// For a language model whose forward returns logits sharded on the vocabulary (S(-1)): the loss is computed on the
        /// last stage over the shards, never gathering them. Refused when the model's output is not sharded on its last dimension.
        /// </summary>
        public PipelineExecutor(torch.nn.Module<torch.Tensor, torch.Tensor> model, PipelineSchedule schedule, Layers.VocabParallelLoss loss)
            : this(model, schedule, (loss ?? throw new ArgumentNullException(nameof(loss))).ComputeOverwriting, shardedLoss: true) // the logits are ours: nothing reads them after the loss
        {
        }

        private PipelineExecutor(torch.nn.Module<torch.Tensor, torch.Tensor> model, PipelineSchedule schedule, Func<torch.Tensor, torch.Tensor, torch.Tensor> loss, bool shardedLoss)
        {
            context = RankContext.Current ?? throw new InvalidOperationException("PipelineExecutor must be created inside Ranks.Run.");
            CheckOutput(model, shardedLoss, context);
            PipelineBuild.ReleaseOffStage(model, context);
            ReplicaAlignment.Align(model, context, overDataParallel: false);
            if (schedule.Stages != context.Mesh.Pp)
                throw new ArgumentException($"Schedule '{schedule.Name}' has {schedule.Stages} stages; the mesh has pp = {context.Mesh.Pp} ({context.Mesh}).", nameof(schedule));
            if (schedule.VirtualStages != context.Pipeline.VirtualStages)
                throw new ArgumentException($"Schedule '{schedule.Name}' uses {schedule.VirtualStages} chunk(s) per rank; the model was built with RunOptions.VirtualPipelineStages = {context.Pipeline.VirtualStages}.", nameof(schedule));
            if (context.Pipeline.Layout is null && context.Mesh.Pp > 1)
                throw new ArgumentException("The model has no [PipelineStages] list built on this rank: mark the ModuleList of blocks with [PipelineStages] in a [ParallelModule] class.", nameof(model));
            PipelineScheduleValidator.Validate(schedule);
            this.model = model;
            this.loss = loss;
            Schedule = schedule;
            pipeline = context.PipelineParallel;
            var actions = schedule.Ranks[context.Coordinates.Pp];
            lastForward = actions.Select((a, i) => (a, i)).Last(x => x.a.Kind == PipelineActionKind.Forward).i;
        }

        /// <summary>The schedule being run.</summary>
        public PipelineSchedule Schedule { get; }

        /// <summary>This rank's timed actions of the last step.</summary>
        public IReadOnlyList<PipelineEvent> Events { get; private set; } = Array.Empty<PipelineEvent>();

        /// <summary>Most micro-batches whose forward had run and backward had not, at once, during the last step.</summary>
        public int PeakInFlight { get; private set; }

        /// <summary>Most bytes of stage inputs and outputs held for backward at once during the last step.</summary>
        public long PeakActivationBytes { get; private set; }

        /// <summary>
        /// One training step over <paramref name="input"/> and <paramref name="target"/> (whole batch, split on
        /// dimension 0 into the schedule's micro-batches). Only the first stage reads the input and only the last
        /// the target; other ranks may pass any tensor. Returns the batch's mean loss on every pp rank.
        /// Call optimizer.zero_grad() before and optimizer.step() after, as on one device.
        /// </summary>
        public double Step(torch.Tensor input, torch.Tensor target)
        {
            context.ThrowIfDeferredFailure();
            int m = Schedule.Microbatches, rank = context.Coordinates.Pp;
            int lastStage = Schedule.Stages * Schedule.VirtualStages - 1;
            bool first = rank == 0, last = rank == lastStage % Schedule.Stages;
            var inputs = first ? Split(input, "input", m) : null;
            var targets = last ? Split(target, "target", m) : null;

            var stageInputs = new Dictionary<(int, int), torch.Tensor>();
            var stageOutputs = new Dictionary<(int, int), torch.Tensor>();
            var outputGradients = new Dictionary<(int, int), torch.Tensor>();
            var inputGradients = new Dictionary<(int, int), torch.Tensor>();
            var local = new Queue<torch.Tensor>[2 * (lastStage + 2)];
            double total = 0;
            int inFlight = 0;
            long held = 0;
            PeakInFlight = 0;
            PeakActivationBytes = 0;
            var events = new List<PipelineEvent>();
            var taps = context.GradientTaps;
            taps?.Hold();

            pipeline.Barrier();
            var clock = Stopwatch.StartNew();
            var actions = Schedule.Ranks[rank];
            try
            {
                for (int index = 0; index < actions.Count; index++)
                {
                    var a = actions[index];
                    double start = clock.Elapsed.TotalMicroseconds;
                    var key = (a.Microbatch, a.Stage);
                    switch (a.Kind)
                    {
                        case PipelineActionKind.Forward:
                        {
                            var x = a.Stage == 0 ? inputs![a.Microbatch] : stageInputs[key];
                            stageInputs[key] = x;
                            context.Pipeline.Running = true;
                            context.Pipeline.CurrentStage = a.Stage;
                            var y = model.forward(x);
                            context.Pipeline.Running = false;
                            if (a.Stage == lastStage)
                            {
                                var l = loss(y, targets![a.Microbatch]) / m;
                                total += l.ToDouble();
                                y = l;
                            }
                            stageOutputs[key] = y;
                            held += Bytes(x) + Bytes(y);
                            PeakActivationBytes = Math.Max(PeakActivationBytes, held);
                            PeakInFlight = Math.Max(PeakInFlight, ++inFlight);
                            if (index == lastForward) taps?.Release();
                            break;
                        }
                        case PipelineActionKind.Backward:
                        {
                            var y = stageOutputs[key];
                            var x = stageInputs[key];
                            try
                            {
                                if (a.Stage == lastStage) y.backward();
                                else torch.autograd.backward(new[] { y }, new[] { outputGradients[key] });
                            }
                            catch (Exception)
                            {
                                context.ThrowIfDeferredFailure(); // a failed collective in backward: its own error, not libtorch's rejection
                                throw;
                            }
                            context.ThrowIfDeferredFailure();
                            if (a.Stage > 0) inputGradients[key] = x.grad ?? torch.zeros_like(x);
                            held -= Bytes(x) + Bytes(y);
                            inFlight--;
                            stageOutputs.Remove(key);
                            stageInputs.Remove(key);
                            outputGradients.Remove(key);
                            break;
                        }
                        case PipelineActionKind.SendActivation:
                            Send(stageOutputs[key].detach(), a, local);
                            break;
                        case PipelineActionKind.SendGradient:
                            Send(inputGradients[key], a, local);
                            inputGradients.Remove(key);
                            break;
                        case PipelineActionKind.ReceiveActivation:
                            stageInputs[key] = Receive(a, local).requires_grad_(true);
                            break;
                        case PipelineActionKind.ReceiveGradient:
                            outputGradients[key] = Receive(a, local);
                            break;
                    }
                    events.Add(new PipelineEvent(context.Rank, a.Kind, a.Microbatch, a.Stage, start, clock.Elapsed.TotalMicroseconds));
                }
            }
            finally
            {
                context.Pipeline.Running = false;
                if (taps?.Holding == true) taps.Release();
            }
            Events = events;

            // The mean loss lives on the last stage; every pp rank returns it.
            using var lossTensor = torch.tensor(new[] { last ? total : 0.0 }, device: context.Device);
            pipeline.Broadcast(lossTensor, lastStage % Schedule.Stages);
            return lossTensor.item<double>();
        }

        /// <summary>A loss for whole outputs must not see a shard, and a vocabulary-parallel loss needs one.</summary>
        private static void CheckOutput(torch.nn.Module<torch.Tensor, torch.Tensor> model, bool shardedLoss, RankContext context)
        {
            var output = (model as IPartitionedModule)?.OutputPlacement;
            bool sharded = output is { Kind: PlacementKind.Shard };
            if (context.Mesh.Tp > 1 && sharded && !shardedLoss)
                throw new PartitionException(
                    $"'{model.GetType().FullName}' returns its output sharded over tp ({output}): each rank would give the loss its 1/{context.Mesh.Tp} slice, not the whole output ({context.Mesh}). "
                    + "For logits sharded on the vocabulary, pass a VocabParallelLoss to PipelineExecutor; otherwise end forward with a layer that gives a whole output (RowParallel).");
            if (shardedLoss && !(output is { Kind: PlacementKind.Shard, Dim: -1 } || (output is null && context.Mesh.Tp == 1)))
                throw new PartitionException(
                    $"VocabParallelLoss needs logits sharded on their last dimension (S(-1)); '{model.GetType().FullName}' returns {(output is { } o ? o.ToString() : "an output whose placement the generator could not prove")} ({context.Mesh}).");
        }

        private void Send(torch.Tensor tensor, PipelineAction a, Queue<torch.Tensor>[] local)
        {
            CheckShape(tensor, a);
            if (a.Peer == context.Coordinates.Pp) (local[a.Tag] ??= new()).Enqueue(tensor.detach().clone());
            else PipelineTransport.Send(pipeline, tensor, a.Peer, a.Tag);
        }

        private torch.Tensor Receive(PipelineAction a, Queue<torch.Tensor>[] local)
        {
            var tensor = a.Peer == context.Coordinates.Pp ? local[a.Tag].Dequeue() : PipelineTransport.Receive(pipeline, a.Peer, a.Tag, context.Device);
            CheckShape(tensor, a);
            return tensor;
        }

        private void CheckShape(torch.Tensor tensor, PipelineAction a)
        {
            if (a.Shape.Count > 0 && !tensor.shape.SequenceEqual(a.Shape))
                throw new InvalidOperationException(
                    $"pp rank {context.Coordinates.Pp}, {a}: the tensor has shape [{string.Join(", ", tensor.shape)}], the schedule declares [{string.Join(", ", a.Shape)}].");
        }

        private static long Bytes(torch.Tensor t) => t.numel() * t.element_size();

        private torch.Tensor[] Split(torch.Tensor batch, string what, int microbatches)
        {
            if (batch.dim() == 0 || batch.shape[0] % microbatches != 0)
                throw new ArgumentException(
                    $"The {what} batch (dimension 0 of [{string.Join(", ", batch.shape)}]) does not split into {microbatches} equal micro-batches (schedule '{Schedule.Name}', pp rank {context.Coordinates.Pp}).");
            return batch.chunk(microbatches, 0);
        }
    }
}
