using System;
using System.Linq;
using TorchSharp;

namespace ModelParallel.Layers
{
    /// <summary>
    /// What the generated interceptors call for <c>view</c>, <c>reshape</c> and <c>expand</c> of a value sharded over tp:
    /// the model writes the logical shape (for example heads, not heads / tp); the dimension the generator found to carry
    /// the shard is divided by tp. Each call checks that the shard really lands there: for a view or reshape, the
    /// dimensions before the shard must hold as many elements as the input's dimensions before its shard (otherwise the
    /// ranks' slices would not be slices of the result, and the call throws naming the site). Outside <c>Ranks.Run</c>,
    /// or at tp = 1, the shape is used as written.
    /// </summary>
    public static class ShardedShapes
    {
        /// <summary><c>self.view(shape)</c> with <paramref name="shardDim"/> of the shape divided by tp; the input is sharded on <paramref name="inputShardDim"/>.</summary>
        public static torch.Tensor View(string site, torch.Tensor self, long[] shape, int shardDim, int inputShardDim) =>
            self.view(Local(site, "view", self, shape, shardDim, inputShardDim));

        /// <summary><c>self.reshape(shape)</c> with <paramref name="shardDim"/> of the shape divided by tp; the input is sharded on <paramref name="inputShardDim"/>.</summary>
        public static torch.Tensor Reshape(string site, torch.Tensor self, long[] shape, int shardDim, int inputShardDim) =>
            self.reshape(Local(site, "reshape", self, shape, shardDim, inputShardDim));

        /// <summary><c>self.expand(sizes)</c> with <paramref name="shardDim"/> of the sizes divided by tp (expand keeps dimensions counted from the end).</summary>
        public static torch.Tensor Expand(string site, torch.Tensor self, long[] sizes, int shardDim, int inputShardDim) =>
            self.expand(Local(site, "expand", self, sizes, shardDim, inputShardDim));

        private static long[] Local(string site, string method, torch.Tensor self, long[] shape, int shardDim, int inputShardDim)
        {
            var context = RankContext.Current;
            if (context is null || context.Mesh.Tp == 1) return shape;
            int tp = context.Mesh.Tp, d = shardDim < 0 ? shape.Length + shardDim : shardDim;
            string written = $"[{string.Join(", ", shape)}]";
            if (d < 0 || d >= shape.Length)
                throw new PartitionException($"{site}: the {method} {written} has no dimension {shardDim} to carry the tp shard ({context.Mesh}).");
            int input = (int)self.dim() + inputShardDim;
            if (input < 0 || input >= self.dim())
                throw new PartitionException($"{site}: the input [{string.Join(", ", self.shape)}] has no dimension {inputShardDim}, where the generator placed its tp shard ({context.Mesh}).");
            var local = (long[])shape.Clone();
            if (local[d] != -1)
            {
                if (local[d] % tp != 0)
                    throw new PartitionException(
                        $"{site}: dimension {shardDim} of the {method} {written} carries the tp shard and has size {local[d]}, not divisible by tp = {tp} ({context.Mesh}). For attention, the number of heads must be divisible by tp.");
                local[d] /= tp;
            }
            if (method == "expand")
            {
                if (local[d] != -1 && local[d] != self.shape[input])
                    throw new PartitionException($"{site}: the expand {written} gives dimension {shardDim} the local size {local[d]}, but the input's slice there is {self.shape[input]} ({context.Mesh}).");
                return local;
            }
            // The sizes as the local tensor fills them (-1 resolved), to check where the shard lands.
            long known = local.Where(s => s != -1).Aggregate(1L, (a, b) => a * b);
            int free = Array.IndexOf(local, -1);
            if (free < 0 && known != self.numel())
                throw new PartitionException(
                    $"{site}: the {method} {written} of a value sharded over tp = {tp} gives the local shape [{string.Join(", ", local)}], but the local tensor is [{string.Join(", ", self.shape)}] ({context.Mesh}).");
            if (free >= 0 && known != 0) local[free] = self.numel() / known;
            long before = self.shape.Take(input).Aggregate(1L, (a, b) => a * b), after = local.Take(d).Aggregate(1L, (a, b) => a * b);
            if (known != 0 && before != after)
                throw new PartitionException(
                    $"{site}: the {method} {written} moves the tp shard: the input's dimensions before its shard hold {before} elements, the {method}'s before dimension {shardDim} hold {after}, so the ranks' slices would not be slices of the result ({context.Mesh}). Keep the sharded dimension the major factor of its group (split heads x head size, not sequence x heads).");
            if (free >= 0) local[free] = -1;
            return local;
        }
    }
}
