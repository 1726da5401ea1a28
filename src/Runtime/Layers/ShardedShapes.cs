using System;
using System.Linq;
using TorchSharp;

namespace ModelParallel.Layers
{
    /// <summary>
    /// What the generated interceptors call for <c>view</c> and <c>reshape</c> of a value sharded over tp: the model
    /// writes the logical shape (for example heads, not heads / tp); the dimension the generator found to carry the
    /// shard is divided by tp. Outside <c>Ranks.Run</c>, or at tp = 1, the shape is used as written.
    /// </summary>
    public static class ShardedShapes
    {
        /// <summary><c>self.view(shape)</c> with <paramref name="shardDim"/> of the shape divided by tp.</summary>
        public static torch.Tensor View(string site, torch.Tensor self, long[] shape, int shardDim) => self.view(Local(site, self, shape, shardDim));

        /// <summary><c>self.reshape(shape)</c> with <paramref name="shardDim"/> of the shape divided by tp.</summary>
        public static torch.Tensor Reshape(string site, torch.Tensor self, long[] shape, int shardDim) => self.reshape(Local(site, self, shape, shardDim));

        private static long[] Local(string site, torch.Tensor self, long[] shape, int shardDim)
        {
            var context = RankContext.Current;
            if (context is null || context.Mesh.Tp == 1) return shape;
            int tp = context.Mesh.Tp, d = shardDim < 0 ? shape.Length + shardDim : shardDim;
            if (d < 0 || d >= shape.Length)
                throw new PartitionException($"{site}: the view [{string.Join(", ", shape)}] has no dimension {shardDim} to carry the tp shard ({context.Mesh}).");
            var local = (long[])shape.Clone();
            if (local[d] == -1) return local;
            if (local[d] % tp != 0)
                throw new PartitionException(
                    $"{site}: dimension {shardDim} of the view [{string.Join(", ", shape)}] carries the tp shard and has size {local[d]}, not divisible by tp = {tp} ({context.Mesh}). For attention, the number of heads must be divisible by tp.");
            local[d] /= tp;
            if (!local.Contains(-1) && local.Aggregate(1L, (a, b) => a * b) != self.numel())
                throw new ArgumentException(
                    $"{site}: the view [{string.Join(", ", shape)}] of a value sharded over tp = {tp} gives the local shape [{string.Join(", ", local)}], but the local tensor is [{string.Join(", ", self.shape)}]: the shard does not map to dimension {shardDim} of the view.");
            return local;
        }
    }
}
