using ModelParallel.Autograd;
using ModelParallel.Communication;
using TorchSharp;

namespace ModelParallel.Layers
{
    /// <summary>
    /// What the generated interceptor calls for <c>scaled_dot_product_attention</c> of queries sharded on the heads with
    /// whole (replicated) keys and values, as multi-query attention has them: each rank keeps its own heads of the keys
    /// and values (a local slice, no communication forward; their gradients are all-gathered backward, so replicated
    /// key/value projections get the whole gradient on every rank).
    /// </summary>
    public static class ShardedAttention
    {
        /// <summary><c>scaled_dot_product_attention</c> with <paramref name="key"/> and <paramref name="value"/> sliced on <paramref name="headDim"/> like the query.</summary>
        public static torch.Tensor SlicedKeysValues(string site, int headDim, torch.Tensor query, torch.Tensor key, torch.Tensor value,
            torch.Tensor? attn_mask, double p, bool is_casual)
        {
            var context = RankContext.Current;
            if (context is null || context.Mesh.Tp == 1) return torch.nn.functional.scaled_dot_product_attention(query, key, value, attn_mask, p, is_casual);
            using var scope = CollectiveSite.Enter(site);
            using var keys = Slice(site, "key", key, headDim, context);
            using var values = Slice(site, "value", value, headDim, context);
            return torch.nn.functional.scaled_dot_product_attention(query, keys, values, attn_mask, p, is_casual);
        }

        private static torch.Tensor Slice(string site, string what, torch.Tensor whole, int headDim, RankContext context)
        {
            long axis = headDim + whole.dim();
            int tp = context.Mesh.Tp;
            if (axis < 0 || whole.shape[axis] % tp != 0)
                throw new PartitionException(
                    $"{site}: the {what} [{string.Join(", ", whole.shape)}] is whole and its dimension {headDim} (the heads) must be sliced over tp = {tp} like the query's, but it has size {(axis < 0 ? 0 : whole.shape[axis])} ({context.Mesh}). With fewer key/value heads than tp (multi-query attention), repeat them to the query's number of heads first (repeat_interleave).");
            return TensorParallel.ScatterToTensorParallel(whole, context.TensorParallel, headDim);
        }
    }
}
