using System;
using TorchSharp;

namespace ModelParallel.Layers
{
    /// <summary>
    /// Deterministic initialisation of local shards. TorchSharp's own initialisers use the process-global
    /// generator, which threads share; here every (layer, shard) draws from its own generator, seeded from
    /// the run's seed, the layer's construction ordinal and the shard index. Replicated tensors use shard
    /// index 0 on every rank, so they are identical everywhere.
    /// </summary>
    internal static class LayerInitializer
    {
        /// <summary>A tensor drawn from U(-bound, bound), TorchSharp's default for Linear (kaiming_uniform with a = √5).</summary>
        public static torch.Tensor Uniform(long[] shape, double bound, ulong seed, long ordinal, int tensorIndex, int shard,
            torch.Device device, torch.ScalarType? dtype)
        {
            using var generator = new torch.Generator(Mix(seed, ordinal, tensorIndex, shard));
            using var cpu = torch.empty(shape, dtype ?? torch.get_default_dtype());
            cpu.uniform_(-bound, bound, generator);
            return cpu.to(device);
        }

        /// <summary>A tensor drawn from N(0, 1), TorchSharp's default for Embedding, from the (layer, shard) generator.</summary>
        public static torch.Tensor Normal(long[] shape, ulong seed, long ordinal, int shard, torch.Device device, torch.ScalarType dtype)
        {
            using var generator = new torch.Generator(Mix(seed, ordinal, 0, shard));
            using var cpu = torch.empty(shape, dtype);
            cpu.normal_(0, 1, generator);
            return cpu.to(device);
        }

        private static ulong Mix(ulong seed, long ordinal, int tensorIndex, int shard)
        {
            ulong x = seed;
            foreach (var part in new[] { (ulong)ordinal, (ulong)tensorIndex, (ulong)shard })
                x = SplitMix(x ^ SplitMix(part + 0x9E3779B97F4A7C15UL));
            return x;
        }

        private static ulong SplitMix(ulong z)
        {
            z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
            z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
            return z ^ (z >> 31);
        }

        public static double LinearBound(long fanIn) => fanIn > 0 ? 1.0 / Math.Sqrt(fanIn) : 0;
    }
}
