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
    /// [ParallelModule] classes are tapped in forward; in backward, as soon as every gradient of a bucket (and of the
    /// buckets before it) has arrived, the bucket's all-reduce starts (MPI_Iallreduce under MPI), overlapping the rest of
    /// backward. Buckets start in bucket order only, so replicas whose forwards differ issue the same all-reduces in the
    /// same order.
    /// <see cref="Synchronize"/> (after backward, before the optimizer step) reduces what is left, waits, and
    /// replaces each gradient with its dp average. Sharded and replicated parameters are treated alike: each
    /// rank averages its local shard with the same shard on the other dp replicas.
    /// A tapped use gives its gradient to the bucket, not to <c>.grad</c>; any other use of the parameter (its weight
    /// read directly, a weight tied to another layer, a second forward after its bucket started) reaches <c>.grad</c>
    /// through autograd, and <see cref="Synchronize"/> averages that too, with one more all-reduce when the bucket had
    /// already started. Such a parameter is not tapped again, so from the next step it costs nothing extra.
    /// A parameter no replica has a gradient for keeps none (it is not set to zeros), so the optimizer skips it as it
    /// would on one device.
    /// Gradients must be zeroed before each step (the usual optimizer.zero_grad()); within a pipeline step the
    /// micro-batches accumulate, and the buckets are held until the last forward (see PipelineExecutor).
    /// </summary>
    public sealed partial class DataParallelGradients
    {
        /// <summary>Bucket size used when none is given: 4M elements (16 MB of float32).</summary>
        public const long DefaultBucketElements = 1L << 22;

        private readonly ICommunicator communicator;
        private readonly Dictionary<(IntPtr, long), int> indexOf = new(); // by storage: TorchSharp may wrap one parameter twice
        private readonly (int Bucket, int Member)[] slots;
        private readonly int[] expected, arrived;
        private readonly GradientMark[] marks;
        private readonly bool[] untapped; // used outside its taps once: averaged after backward from then on
        private readonly string[] names;
        private readonly Parameter[] parameters; // by index
        private readonly bool tapping; // .grad can be watched: parameters are tapped, and Synchronize agrees on uses outside the taps
        private readonly List<GradientBucket> buckets = new();
        private int next; // the first bucket not started in this step: buckets start in order

        private DataParallelGradients(torch.nn.Module model, RankContext context, long bucketElements)
        {
            communicator = context.DataParallel;
            // Parameters on the meta device belong to layers another pipeline stage runs: nothing to average here.
            var named = model.named_parameters().Where(p => p.parameter.requires_grad && p.parameter.device.type != DeviceType.META).ToList();
            // A tied weight is listed once per layer that holds it, each time in its own wrapper: it is one gradient, averaged
            // once, under its first name, and tapped where any of its layers is.
            var tappedNames = TappedNames(model);
            var tapped = named.Where(p => tappedNames.Contains(p.name)).Select(p => Storage(p.parameter)).ToHashSet();
            var parameters = named.DistinctBy(p => Storage(p.parameter)).ToList();
            // Reverse registration order approximates the order gradients become ready in backward.
            var order = parameters.Select((p, i) => (p.name, p.parameter, Index: i)).Reverse().ToList();
            slots = new (int, int)[parameters.Count];
            expected = new int[parameters.Count];
            arrived = new int[parameters.Count];
            marks = new GradientMark[parameters.Count];
            untapped = new bool[parameters.Count];
            names = new string[parameters.Count];
            foreach (var group in new[] { order.Where(p => tapped.Contains(Storage(p.parameter))), order.Where(p => !tapped.Contains(Storage(p.parameter))) })
                Bucketize(group.Select(p => (p.Index, p.parameter)).ToList(), bucketElements, context.Device);
            this.parameters = new Parameter[parameters.Count];
            foreach (var (name, parameter, index) in order)
            {
                indexOf[Storage(parameter)] = index;
                names[index] = name;
                this.parameters[index] = parameter;
            }
            tapping = GradientMark.Supported;
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

        /// <summary>What identifies a parameter whichever wrapper holds it: its storage address and size.</summary>
        private static (IntPtr Data, long Elements) Storage(Parameter parameter)
        {
            var facts = new TensorFacts(parameter);
            return (facts.Data, facts.Elements);
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

        /// <summary>
        /// The name of a parameter whose tapped gradient waits in a bucket for <see cref="Synchronize"/> (its <c>.grad</c>
        /// lacks it until then), or null when none does.
        /// </summary>
        internal string? Unsynchronized()
        {
            for (int i = 0; i < arrived.Length; i++)
                if (arrived[i] > 0) return names[i];
            return null;
        }

        /// <summary>In forward: routes the parameter through a tap so its gradient is reported in backward.</summary>
        internal torch.Tensor Tap(Parameter parameter)
        {
            // No tap where backward will not come (no_grad), where the parameter was seen used outside its taps, where its
            // bucket's all-reduce already started (a second forward before Synchronize), or where .grad cannot be watched.
            if (!indexOf.TryGetValue(Storage(parameter), out int index) || untapped[index] || !torch.is_grad_enabled() || !tapping) return parameter;
            var (b, _) = slots[index];
            if (buckets[b].Pending is not null) return parameter;
            if (expected[index]++ == 0) marks[index] = GradientMark.Take(parameter);
            return GradientTap.apply(parameter, this, index);
        }

        /// <summary>
        /// In backward: one use's gradient of a parameter, added to its bucket; starts the bucket's all-reduce when it and
        /// every bucket before it are complete. False when the bucket has already started: the gradient then goes on to .grad.
        /// </summary>
        internal bool Arrive(int index, torch.Tensor gradient)
        {
            var (b, m) = slots[index];
            var bucket = buckets[b];
            if (bucket.Pending is not null) return false;
            using (torch.no_grad())
            {
                // The first use's gradient of a step overwrites the slice (one pass less than adding it to zeros); later ones add.
                using var slice = bucket.Slice(m);
                using var flat = gradient.reshape(-1);
                if (arrived[index] == 0) slice.copy_(flat);
                else slice.add_(flat);
                bucket.MarkPresent(m);
            }
            if (++arrived[index] == expected[index]) StartInOrder();
            return true;
        }

        /// <summary>
        /// While true, gradients accumulate in the buckets but no all-reduce starts: a pipeline step holds them
        /// until its last forward, because before that a later micro-batch may still add to any gradient.
        /// </summary>
        internal bool Holding { get; private set; }

        /// <summary>Holds the buckets (see <see cref="Holding"/>).</summary>
        internal void Hold() => Holding = true;

        /// <summary>Ends the hold: starts, in order, the buckets whose gradients are already complete; the rest start as they complete.</summary>
        internal void Release()
        {
            Holding = false;
            StartInOrder();
        }

        /// <summary>
        /// Starts the next buckets whose gradients have all arrived, in bucket order and never out of it: replicas whose
        /// forwards differ (a branch one takes and another does not) complete buckets in different orders, and their
        /// all-reduces must still be issued in one order. A bucket waiting for an earlier one starts when that one does,
        /// or in <see cref="Synchronize"/>.
        /// </summary>
        private void StartInOrder()
        {
            while (!Holding && next < buckets.Count && buckets[next].Members.All(x => expected[x.Index] > 0 && arrived[x.Index] == expected[x.Index]))
                Start(buckets[next++]);
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
