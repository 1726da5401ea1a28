using System;
using ModelParallel.Autograd;
using ModelParallel.Communication;
using TorchSharp;
using TorchSharp.Modules;

namespace ModelParallel.Layers
{
    /// <summary>
    /// What the generated interceptors call for <c>Linear</c> fields of a <c>[ParallelModule]</c>: the
    /// constructors of the local shards and the forwards with the communication their placements need.
    /// Outside <see cref="Ranks.Run(MeshShape, Action{RankContext}, RunOptions?)"/> every method is the
    /// plain TorchSharp call, so the model is exactly the single-device model.
    /// </summary>
    public static class ParallelLinear
    {
        /// <summary>Weight [out/tp, in] and bias [out/tp]: Shard(0) over tp.</summary>
        /// <remarks>
        /// With <paramref name="chunks"/> &gt; 1 (a fused projection whose output forward splits into that many
        /// parts, such as q, k and v) each rank holds its slice of every part, so the local output splits the same way.
        /// </remarks>
        public static Linear CreateColumnParallel(string layer, long inputSize, long outputSize, bool hasBias,
            torch.Device? device, torch.ScalarType? dtype, int chunks = 1)
        {
            var context = RankContext.Current;
            if (context is null) return torch.nn.Linear(inputSize, outputSize, hasBias, device, dtype);
            int rank = context.Coordinates.Tp;
            if (chunks > 1 && outputSize % (chunks * context.Mesh.Tp) != 0)
                throw new PartitionException(
                    $"Layer '{layer}' (ColumnParallel, output split into {chunks} parts in forward): out_features = {outputSize} is not divisible by {chunks} parts x tp = {context.Mesh.Tp} ({context.Mesh}).");
            long local = Divide(layer, "ColumnParallel", "out_features", outputSize, context.Mesh);
            return Build(context, inputSize, local, inputSize, hasBias, weightShard: rank, biasShard: rank, device, dtype, weightSharded: true, biasSharded: true);
        }

        /// <summary>Weight [out, in/tp]: Shard(1) over tp; bias [out] replicated, added once after the reduction.</summary>
        public static Linear CreateRowParallel(string layer, long inputSize, long outputSize, bool hasBias,
            torch.Device? device, torch.ScalarType? dtype)
        {
            var context = RankContext.Current;
            if (context is null) return torch.nn.Linear(inputSize, outputSize, hasBias, device, dtype);
            long local = Divide(layer, "RowParallel", "in_features", inputSize, context.Mesh);
            return Build(context, local, outputSize, inputSize, hasBias, weightShard: context.Coordinates.Tp, biasShard: 0, device, dtype, weightSharded: true, biasSharded: false);
        }

        /// <summary>The whole layer on every rank, initialised identically.</summary>
        public static Linear CreateReplicated(string layer, long inputSize, long outputSize, bool hasBias,
            torch.Device? device, torch.ScalarType? dtype)
        {
            var context = RankContext.Current;
            if (context is null) return torch.nn.Linear(inputSize, outputSize, hasBias, device, dtype);
            return Build(context, inputSize, outputSize, inputSize, hasBias, weightShard: 0, biasShard: 0, device, dtype, weightSharded: false, biasSharded: false);
        }

        /// <summary>f (identity forward, all-reduce backward), then the local shard: input R, output S(-1).</summary>
        public static torch.Tensor ColumnForward(string layer, Linear self, torch.Tensor input)
        {
            var context = LayerOwnership.ContextFor(layer, self, out var site);
            using var scope = CollectiveSite.Enter(site);
            if (context is null) return self.forward(input);
            context.ThrowIfDeferredFailure();
            return Local(context, self, TensorParallel.CopyToTensorParallel(input, context.TensorParallel));
        }

        /// <summary>The local shard (S(-1) → P), g (all-reduce forward, identity backward), then the bias once: output R.</summary>
        public static torch.Tensor RowForward(string layer, Linear self, torch.Tensor input)
        {
            var context = LayerOwnership.ContextFor(layer, self, out var site);
            using var scope = CollectiveSite.Enter(site);
            if (context is null) return self.forward(input);
            context.ThrowIfDeferredFailure();
            if (context.Mesh.Tp == 1) return Local(context, self, input);
            CheckRowInput(layer, "RowParallel", self, input, context);
            var partial = torch.nn.functional.linear(input, context.Tapped(self.weight)!, null);
            var reduced = TensorParallel.ReduceFromTensorParallel(partial, context.TensorParallel);
            return self.bias is null ? reduced : reduced + context.Tapped(self.bias)!;
        }

        /// <summary>
        /// A ColumnParallel layer whose input arrives sharded on its last dimension (after another ColumnParallel
        /// layer): all-gather it first (backward: keep this rank's slice of the gradient), then <see cref="ColumnForward"/>.
        /// </summary>
        public static torch.Tensor ColumnForwardGathered(string layer, Linear self, torch.Tensor input)
        {
            var context = LayerOwnership.ContextFor(layer, self, out var site);
            using var scope = CollectiveSite.Enter(site);
            if (context is null || context.Mesh.Tp == 1) return ColumnForward(layer, self, input);
            return ColumnForward(layer, self, TensorParallel.GatherFromTensorParallel(input, context.TensorParallel, -1));
        }

        /// <summary>
        /// A RowParallel layer whose input is replicated: take this rank's slice of the last dimension (free; backward
        /// all-gathers the gradient), then <see cref="RowForward"/>.
        /// </summary>
        public static torch.Tensor RowForwardSliced(string layer, Linear self, torch.Tensor input)
        {
            var context = LayerOwnership.ContextFor(layer, self, out var site);
            using var scope = CollectiveSite.Enter(site);
            if (context is null || context.Mesh.Tp == 1) return RowForward(layer, self, input);
            return RowForward(layer, self, TensorParallel.ScatterToTensorParallel(input, context.TensorParallel, -1));
        }

        /// <summary>
        /// RowParallel with ReduceOutput = false: the local shard's product (S(-1) → P) and the bias once in the sum
        /// (on tp rank 0; every replica still gets its gradient), no reduction. The generator reduces the partial sum where forward first needs it whole.
        /// </summary>
        public static torch.Tensor RowForwardPartial(string layer, Linear self, torch.Tensor input)
        {
            var context = LayerOwnership.ContextFor(layer, self, out var site);
            using var scope = CollectiveSite.Enter(site);
            if (context is null || context.Mesh.Tp == 1) return RowForward(layer, self, input);
            context.ThrowIfDeferredFailure();
            var partial = torch.nn.functional.linear(input, context.Tapped(self.weight)!, null);
            return self.bias is null ? partial : partial + AddOnceToPartialSum.apply(context.Tapped(self.bias)!, context.Coordinates.Tp == 0);
        }

        /// <summary>
        /// RowParallel with ReduceOutput = false on a replicated input: this rank's slice of the last dimension (free;
        /// backward all-gathers the gradient), then <see cref="RowForwardPartial"/>.
        /// </summary>
        public static torch.Tensor RowForwardSlicedPartial(string layer, Linear self, torch.Tensor input)
        {
            var context = LayerOwnership.ContextFor(layer, self, out var site);
            using var scope = CollectiveSite.Enter(site);
            if (context is null || context.Mesh.Tp == 1) return RowForward(layer, self, input);
            return RowForwardPartial(layer, self, TensorParallel.ScatterToTensorParallel(input, context.TensorParallel, -1));
        }

        /// <summary>
        /// RowParallel with ReduceOutput = false fed a partial sum: reduce-scatter it onto the last dimension (P → S(-1);
        /// backward all-gather), then <see cref="RowForwardPartial"/>.
        /// </summary>
        public static torch.Tensor RowForwardReduceScatteredPartial(string layer, Linear self, torch.Tensor input)
        {
            var context = LayerOwnership.ContextFor(layer, self, out var site);
            using var scope = CollectiveSite.Enter(site);
            if (context is null || context.Mesh.Tp == 1) return RowForward(layer, self, input);
            return RowForwardPartial(layer, self, TensorParallel.ReduceScatterToTensorParallel(input, context.TensorParallel, -1));
        }

        /// <summary>
        /// A RowParallel layer fed a partial sum: reduce-scatter it onto the last dimension (P → S(-1); backward
        /// all-gather), the cheapest way to the input placement the layer needs, then <see cref="RowForward"/>.
        /// </summary>
        public static torch.Tensor RowForwardReduceScattered(string layer, Linear self, torch.Tensor input)
        {
            var context = LayerOwnership.ContextFor(layer, self, out var site);
            using var scope = CollectiveSite.Enter(site);
            if (context is null || context.Mesh.Tp == 1) return RowForward(layer, self, input);
            return RowForward(layer, self, TensorParallel.ReduceScatterToTensorParallel(input, context.TensorParallel, -1));
        }

        /// <summary>A ColumnParallel layer fed a partial sum: reduce it (g: all-reduce forward, identity backward), then <see cref="ColumnForward"/>.</summary>
        public static torch.Tensor ColumnForwardReduced(string layer, Linear self, torch.Tensor input)
        {
            var context = LayerOwnership.ContextFor(layer, self, out var site);
            using var scope = CollectiveSite.Enter(site);
            if (context is null || context.Mesh.Tp == 1) return ColumnForward(layer, self, input);
            return ColumnForward(layer, self, TensorParallel.ReduceFromTensorParallel(input, context.TensorParallel));
        }

        /// <summary>A replicated layer fed a partial sum: reduce it (g), then <see cref="ReplicatedForward"/>.</summary>
        public static torch.Tensor ReplicatedForwardReduced(string layer, Linear self, torch.Tensor input)
        {
            var context = LayerOwnership.ContextFor(layer, self, out var site);
            using var scope = CollectiveSite.Enter(site);
            if (context is null || context.Mesh.Tp == 1) return ReplicatedForward(layer, self, input);
            return ReplicatedForward(layer, self, TensorParallel.ReduceFromTensorParallel(input, context.TensorParallel));
        }

        /// <summary>A replicated layer: the plain forward, with its gradients tapped for data parallelism when dp &gt; 1.</summary>
        public static torch.Tensor ReplicatedForward(string layer, Linear self, torch.Tensor input)
        {
            var context = LayerOwnership.ContextFor(layer, self, out var site);
            using var scope = CollectiveSite.Enter(site);
            if (context is null) return self.forward(input);
            context.ThrowIfDeferredFailure();
            return Local(context, self, input);
        }

        /// <summary>A RowParallel layer's input must be sharded on its last dimension: this rank's in_features / tp.</summary>
        internal static void CheckRowInput(string layer, string placement, Linear self, torch.Tensor input, RankContext context)
        {
            long local = self.weight!.shape[1];
            if (input.shape[^1] == local) return;
            var hint = input.shape[^1] == local * context.Mesh.Tp
                ? " It got the whole dimension: a RowParallel layer expects the output of a ColumnParallel layer (Shard(-1)), not a replicated tensor."
                : "";
            throw new PartitionException(
                $"Layer '{layer}' ({placement}): input dimension -1 has size {input.shape[^1]}, expected the local shard size {local} (in_features {local * context.Mesh.Tp} / tp {context.Mesh.Tp}, {context.Mesh}).{hint}");
        }

        /// <summary>The layer on its local weights; through the gradient taps when data parallelism needs them.</summary>
        internal static torch.Tensor Local(RankContext context, Linear self, torch.Tensor input) =>
            context.GradientTaps is null
                ? self.forward(input)
                : torch.nn.functional.linear(input, context.Tapped(self.weight)!, context.Tapped(self.bias));

        private static long Divide(string layer, string placement, string dimension, long size, MeshShape mesh)
        {
            if (size % mesh.Tp != 0)
                throw new PartitionException(
                    $"Layer '{layer}' ({placement}): {dimension} = {size} is not divisible by tp = {mesh.Tp} ({mesh}).");
            return size / mesh.Tp;
        }

        private static Linear Build(RankContext context, long inLocal, long outLocal, long fanIn, bool hasBias,
            int weightShard, int biasShard, torch.Device? device, torch.ScalarType? dtype, bool weightSharded, bool biasSharded)
        {
            long ordinal = context.NextLayerOrdinal();
            var target = device ?? context.Device;
            var bound = LayerInitializer.LinearBound(fanIn);
            // Built on the meta device so nothing is allocated until the local shard is drawn.
            var linear = LayerOwnership.Own(torch.nn.Linear(inLocal, outLocal, hasBias, torch.META, dtype));
            // A layer of another pipeline stage stays on the meta device: its shapes, no memory.
            if (device?.type == DeviceType.META || !Pipelining.PipelineBuild.Holds(context, null)) return linear;
            linear.weight = new Parameter(LayerInitializer.Uniform([outLocal, inLocal], bound, context.Seed, ordinal, 0, weightShard, target, dtype));
            if (weightSharded) ReplicaCheck.MarkShard(linear.weight);
            if (hasBias)
            {
                linear.bias = new Parameter(LayerInitializer.Uniform([outLocal], bound, context.Seed, ordinal, 1, biasShard, target, dtype));
                if (biasSharded) ReplicaCheck.MarkShard(linear.bias);
            }
            return linear;
        }
    }
}
