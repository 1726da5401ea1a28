using System;
using System.Collections.Generic;
using System.Linq;
using ModelParallel.Autograd;
using ModelParallel.Communication;
using TorchSharp;
using TorchSharp.Modules;

namespace ModelParallel.DataParallel
{
    /// <summary>
    /// Averages a model's gradients over the data-parallel axis, in buckets. Parameters of Linear layers in
    /// [ParallelModule] classes are tapped in forward; in backward, as soon as every gradient of a bucket has
    /// arrived, the bucket's all-reduce starts (MPI_Iallreduce under MPI), overlapping the rest of backward.
    /// <see cref="Synchronize"/> (after backward, before the optimizer step) reduces what is left, waits, and
    /// replaces each gradient with its dp average. Sharded and replicated parameters are treated alike: each
    /// rank averages its local shard with the same shard on the other dp replicas.
    /// Gradients must be zeroed before each step (the usual optimizer.zero_grad()); within a pipeline step the
    /// micro-batches accumulate, and the buckets are held until the last forward (see PipelineExecutor).
    /// </summary>
    public sealed class DataParallelGradients
    {
        /// <summary>Bucket size used when none is given: 4M elements (16 MB of float32).</summary>
        public const long DefaultBucketElements = 1L << 22;

        private readonly ICommunicator communicator;
        private readonly Dictionary<Parameter, int> indexOf = new(ReferenceEqualityComparer.Instance);
        private readonly (int Bucket, int Member)[] slots;
        private readonly int[] expected, arrived;
        private readonly List<GradientBucket> buckets = new();

        private DataParallelGradients(torch.nn.Module model, RankContext context, long bucketElements)
        {
            communicator = context.DataParallel;
            // Parameters on the meta device belong to layers another pipeline stage runs: nothing to average here.
            var parameters = model.named_parameters().Where(p => p.parameter.requires_grad && p.parameter.device.type != DeviceType.META).ToList();
            var tapped = TappedNames(model);
            // Reverse registration order approximates the order gradients become ready in backward.
            var order = parameters.Select((p, i) => (p.name, p.parameter, Index: i)).Reverse().ToList();
            slots = new (int, int)[parameters.Count];
            expected = new int[parameters.Count];
            arrived = new int[parameters.Count];
            foreach (var group in new[] { order.Where(p => tapped.Contains(p.name)), order.Where(p => !tapped.Contains(p.name)) })
                Bucketize(group.Select(p => (p.Index, p.parameter)).ToList(), bucketElements, context.Device);
            foreach (var (_, parameter, index) in order) indexOf[parameter] = index;
        }

        /// <summary>The gradient averaging of <paramref name="model"/> on this rank's dp axis. Call inside Ranks.Run.</summary>
        public static DataParallelGradients Attach(torch.nn.Module model, long bucketElements = DefaultBucketElements)
        {
            var context = RankContext.Current ?? throw new InvalidOperationException("DataParallelGradients.Attach must be called inside Ranks.Run.");
            if (bucketElements < 1) throw new ArgumentOutOfRangeException(nameof(bucketElements), $"Bucket size must be positive; got {bucketElements}.");
            ReplicaAlignment.Align(model, context, overDataParallel: true); // replicas start equal, as DDP makes them
            var gradients = new DataParallelGradients(model, context, bucketElements);
            if (context.Mesh.Dp > 1) context.GradientTaps = gradients;
            return gradients;
        }

        /// <summary>How many buckets the parameters were split into.</summary>
        public int BucketCount => buckets.Count;

        /// <summary>How many buckets started their all-reduce during the last backward, before <see cref="Synchronize"/>.</summary>
        public int StartedDuringBackward { get; private set; }

        /// <summary>Starts a bucket's all-reduce, signed with the bucket's index so ranks that start them in different orders are told apart.</summary>
        private void Start(GradientBucket bucket)
        {
            using var site = CollectiveSite.Enter($"dp gradient bucket {buckets.IndexOf(bucket)}");
            bucket.Pending = communicator.StartAllReduce(bucket.Buffer, ReduceOp.Average);
        }

        /// <summary>Reduces the buckets still waiting, waits for all, and writes the dp-averaged gradients back.</summary>
        public void Synchronize()
        {
            if (communicator.Size == 1) return;
            using var noGrad = torch.no_grad();
            StartedDuringBackward = buckets.Count(b => b.Pending is not null);
            foreach (var bucket in buckets.Where(b => b.Pending is null))
            {
                for (int m = 0; m < bucket.Members.Count; m++)
                {
                    var (index, parameter) = bucket.Members[m];
                    if (expected[index] > 0 && arrived[index] == expected[index]) continue;
                    // Not tapped (or not used through a tap) this step: autograd's gradient is complete now.
                    var slice = bucket.Slice(m);
                    if (parameter.grad is { } grad) slice.copy_(grad.reshape(-1));
                    else slice.zero_();
                }
                Start(bucket);
            }
            foreach (var bucket in buckets)
            {
                bucket.Pending!.Wait();
                for (int m = 0; m < bucket.Members.Count; m++)
                {
                    var parameter = bucket.Members[m].Parameter;
                    var average = bucket.Slice(m).view(parameter.shape);
                    if (parameter.grad is { } grad) grad.copy_(average);
                    else parameter.grad = average.clone();
                }
                bucket.Buffer.zero_();
                bucket.Ready = 0;
                bucket.Pending = null;
            }
            Array.Clear(expected);
            Array.Clear(arrived);
        }

        /// <summary>In forward: routes the parameter through a tap so its gradient is reported in backward.</summary>
        internal torch.Tensor Tap(Parameter parameter)
        {
            if (!indexOf.TryGetValue(parameter, out int index)) return parameter;
            expected[index]++;
            return GradientTap.apply(parameter, this, index);
        }

        /// <summary>In backward: one use's gradient of a parameter; starts the bucket's all-reduce when it is complete.</summary>
        internal void Arrive(int index, torch.Tensor gradient)
        {
            var (b, m) = slots[index];
            var bucket = buckets[b];
            using (torch.no_grad()) bucket.Slice(m).add_(gradient.reshape(-1));
            if (++arrived[index] != expected[index] || Holding) return;
            if (++bucket.Ready == bucket.Members.Count && bucket.Members.All(x => expected[x.Index] > 0))
                Start(bucket);
        }

        /// <summary>
        /// While true, gradients accumulate in the buckets but no all-reduce starts: a pipeline step holds them
        /// until its last forward, because before that a later micro-batch may still add to any gradient.
        /// </summary>
        internal bool Holding { get; private set; }

        /// <summary>Holds the buckets (see <see cref="Holding"/>).</summary>
        internal void Hold() => Holding = true;

        /// <summary>Ends the hold: starts every bucket whose gradients are already complete; the rest start as they complete.</summary>
        internal void Release()
        {
            Holding = false;
            foreach (var bucket in buckets.Where(b => b.Pending is null))
            {
                bucket.Ready = bucket.Members.Count(x => expected[x.Index] > 0 && arrived[x.Index] == expected[x.Index]);
                if (bucket.Ready == bucket.Members.Count)
                    Start(bucket);
            }
        }

        private void Bucketize(List<(int Index, Parameter Parameter)> parameters, long bucketElements, torch.Device device)
        {
            var current = new List<(int, Parameter)>();
            long size = 0;
            void Close()
            {
                if (current.Count == 0) return;
                for (int m = 0; m < current.Count; m++) slots[current[m].Item1] = (buckets.Count, m);
                buckets.Add(new GradientBucket(current.ToList(), device));
                current.Clear();
                size = 0;
            }
            foreach (var p in parameters)
            {
                if (current.Count > 0 && (size + p.Parameter.numel() > bucketElements || current[0].Item2.dtype != p.Parameter.dtype)) Close();
                current.Add(p);
                size += p.Parameter.numel();
            }
            Close();
        }

        /// <summary>Full names of the parameters of Linear fields of [ParallelModule] classes: their forwards are intercepted and tapped.</summary>
        private static HashSet<string> TappedNames(torch.nn.Module model)
        {
            var names = new HashSet<string>();
            foreach (var (prefix, module) in new[] { ("", model) }.Concat(model.named_modules().Where(m => m.name.Length > 0)))
            {
                if (module is not IPartitionedModule) continue;
                foreach (var (child, layer) in module.named_children())
                {
                    if (layer is not Linear) continue;
                    var path = prefix.Length == 0 ? child : $"{prefix}.{child}";
                    names.Add(path + ".weight");
                    names.Add(path + ".bias");
                }
            }
            return names;
        }
    }
}
