using System;
using TorchSharp;

namespace ModelParallel.Layers
{
    /// <summary>
    /// Dropout with Megatron's random-number discipline, for <c>nn.functional.dropout</c> calls in a [ParallelModule]
    /// forward: on a replicated activation every tp rank draws the same mask (the same stream), so the replicas stay
    /// identical; on a sharded activation each tp rank draws its own (a stream per tp rank), so the slices are
    /// independent. Streams come from the run's seed, the dp coordinate and a per-rank call counter that advances
    /// identically on every tp rank. Outside Ranks.Run it is TorchSharp's dropout.
    /// </summary>
    public static class ParallelDropout
    {
        /// <summary>The interceptor's target: <paramref name="sharded"/> is the placement the generator found for the input.</summary>
        public static torch.Tensor Dropout(string site, bool sharded, torch.Tensor input, double p, bool training, bool inplace)
        {
            var context = RankContext.Current;
            if (context is null) return torch.nn.functional.dropout(input, p, training, inplace);
            if (p < 0 || p > 1) throw new ArgumentOutOfRangeException(nameof(p), $"{site}: dropout probability must be in [0, 1]; got {p}.");
            if (!training || p == 0) return input;
            if (p == 1) return input * 0;
            ulong stream = Mix(context.Seed, (ulong)context.NextDropoutCall(), (ulong)context.Coordinates.Dp, sharded ? (ulong)context.Coordinates.Tp + 1 : 0);
            using var generator = new torch.Generator(stream);
            using var keep = torch.empty(input.shape, torch.float32).bernoulli_(1 - p, generator);
            var mask = keep.to(input.dtype).to(input.device);
            if (inplace) return input.mul_(mask).DivideInPlace(1 - p);
            return (input * mask).DivideInPlace(1 - p); // in place on the product, which the product's backward does not read
        }

        private static ulong Mix(params ulong[] parts)
        {
            ulong z = 0x9E3779B97F4A7C15UL;
            foreach (var part in parts)
            {
                z ^= part + 0x9E3779B97F4A7C15UL + (z << 6) + (z >> 2);
                z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
                z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
                z ^= z >> 31;
            }
            return z;
        }
    }
}
