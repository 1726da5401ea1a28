using System.Linq;
using ModelParallel.Autograd;
using ModelParallel.Communication;
using TorchSharp;
using TorchSharp.Modules;

namespace ModelParallel.Layers
{
    /// <summary>
    /// What the generated interceptors call under sequence parallelism (<c>[ParallelModule(SequenceParallel = true)]</c>):
    /// the residual stream is split along the sequence, dimension -2, over tp (S(-2)). A ColumnParallel layer all-gathers
    /// the sequence first, a RowParallel layer reduce-scatters its partial product along it, a LayerNorm normalizes its
    /// rows with weights whose gradients are all-reduced, and a whole value entering the stream is split where it was
    /// produced. Outside <c>Ranks.Run</c>, and at tp = 1, each is the plain TorchSharp call.
    /// </summary>
    public static class SequenceParallel
    {
        /// <summary>A whole value entering the stream: this rank's slice of dimension -2 (R → S(-2), free; backward all-gathers the gradient).</summary>
        public static torch.Tensor Scatter(string site, torch.Tensor whole)
        {
            var context = RankContext.Current;
            if (context is null || context.Mesh.Tp == 1) return whole;
            context.ThrowIfDeferredFailure();
            using var scope = CollectiveSite.Enter(site);
            CheckSequence(site, "the whole value split into the sequence-parallel stream", whole, context.Mesh.Tp, context);
            return TensorParallel.ScatterToTensorParallel(whole, context.TensorParallel, -2);
        }

        /// <summary>ColumnParallel on the stream: all-gather the sequence (S(-2) → R; backward reduce-scatters the input gradient), then the local shard: S(-1).</summary>
        public static torch.Tensor ColumnForward(string layer, Linear self, torch.Tensor input)
        {
            var context = LayerOwnership.ContextFor(layer, self, out var site);
            using var scope = CollectiveSite.Enter(site);
            if (context is null || context.Mesh.Tp == 1) return ParallelLinear.ColumnForward(layer, self, input);
            context.ThrowIfDeferredFailure();
            if (input.dim() < 2)
                throw new PartitionException($"Layer '{layer}' (ColumnParallel, sequence parallel): the input [{string.Join(", ", input.shape)}] has no sequence dimension -2 to all-gather (rank {context.Coordinates.Tp}, {context.Mesh}).");
            return ParallelLinear.Local(context, self, TensorParallel.GatherFromSequenceParallel(input, context.TensorParallel, -2));
        }

        /// <summary>RowParallel on the stream: the local shard (S(-1) → P), reduce-scattered along the sequence (backward all-gather), then the bias through f: S(-2).</summary>
        public static torch.Tensor RowForward(string layer, Linear self, torch.Tensor input)
        {
            var context = LayerOwnership.ContextFor(layer, self, out var site);
            using var scope = CollectiveSite.Enter(site);
            if (context is null || context.Mesh.Tp == 1) return ParallelLinear.RowForward(layer, self, input);
            context.ThrowIfDeferredFailure();
            ParallelLinear.CheckRowInput(layer, "RowParallel, sequence parallel", self, input, context);
            CheckSequence(layer, "the output to reduce-scatter along the sequence", input, context.Mesh.Tp, context);
            var partial = torch.nn.functional.linear(input, context.Tapped(self.weight)!, null);
            var scattered = TensorParallel.ReduceScatterToTensorParallel(partial, context.TensorParallel, -2);
            if (self.bias is null) return scattered;
            // Each rank adds the bias to its own tokens, so its gradient sums those only: f all-reduces it over tp.
            return scattered + TensorParallel.CopyToTensorParallel(context.Tapped(self.bias)!, context.TensorParallel);
        }

        /// <summary>
        /// A LayerNorm on a value sharded on <paramref name="shardDim"/>, a dimension it does not normalize: each rank
        /// normalizes its rows, with the weight and bias through f, whose backward all-reduces their gradients over tp.
        /// </summary>
        public static torch.Tensor LayerNorm(string site, LayerNorm self, torch.Tensor input, int shardDim)
        {
            var context = RankContext.Current;
            if (context is null || context.Mesh.Tp == 1) return self.forward(input);
            context.ThrowIfDeferredFailure();
            using var scope = CollectiveSite.Enter(site);
            var normalized = self.normalized_shape;
            if (normalized.Length >= -shardDim)
                throw new PartitionException(
                    $"{site}: the LayerNorm normalizes the last {normalized.Length} dimensions [{string.Join(", ", normalized)}], which include the sharded dimension {shardDim} of its input [{string.Join(", ", input.shape)}] (rank {context.Coordinates.Tp}, {context.Mesh}); each rank holds only a slice there, so it would normalize over its slice. Normalize fewer dimensions, or give it a whole input.");
            if (self.weight is null && self.bias is null) return self.forward(input);
            var weight = self.weight is null ? null : TensorParallel.CopyToTensorParallel(self.weight, context.TensorParallel);
            var bias = self.bias is null ? null : TensorParallel.CopyToTensorParallel(self.bias, context.TensorParallel);
            return torch.nn.functional.layer_norm(input, normalized, weight, bias, self.eps);
        }

        /// <summary>The sequence, dimension -2, must split evenly over tp.</summary>
        private static void CheckSequence(string site, string what, torch.Tensor value, int tp, RankContext context)
        {
            if (value.dim() >= 2 && value.shape[^2] % tp == 0) return;
            throw new PartitionException(value.dim() < 2
                ? $"{site}: {what} [{string.Join(", ", value.shape)}] has no sequence dimension -2 (rank {context.Coordinates.Tp}, {context.Mesh})."
                : $"{site}: {what} [{string.Join(", ", value.shape)}] has a sequence (dimension -2) of {value.shape[^2]}, which does not split over tp = {tp} (rank {context.Coordinates.Tp}, {context.Mesh}); use a sequence length divisible by tp.");
        }
    }
}
