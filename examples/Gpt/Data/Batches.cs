using System;
using TorchSharp;

namespace ModelParallel.Examples.Gpt.Data
{
    /// <summary>
    /// Training batches: windows of context + 1 tokens at offsets drawn from a generator seeded by (seed, step), the
    /// same on every rank, so each dp rank takes its own rows of one global batch without any communication.
    /// Validation batches: fixed windows spread evenly over the validation file.
    /// </summary>
    public sealed class Batches(TokenStream train, TokenStream validation, long context, long batch, int dp, int seed)
    {
        /// <summary>The (input, target) rows of dp rank <paramref name="dpRank"/> at <paramref name="step"/>: [batch, context] each.</summary>
        public (torch.Tensor Input, torch.Tensor Target) Training(int step, int dpRank)
        {
            if (train.Length <= context + 1) throw new UsageException($"The training text has {train.Length} tokens, not more than --context {context}.");
            // Not HashCode.Combine: its seed differs in every process, so MPI ranks (and a resumed run) would draw other batches.
            var random = new Random(unchecked(seed * 1_000_003 + step));
            var offsets = new long[batch * dp];
            for (int i = 0; i < offsets.Length; i++) offsets[i] = random.NextInt64(train.Length - context - 1);
            return Windows(train, offsets.AsSpan((int)(dpRank * batch), (int)batch));
        }

        /// <summary>Validation batch <paramref name="index"/> of <paramref name="count"/>: the same windows on every call.</summary>
        public (torch.Tensor Input, torch.Tensor Target) Validation(int index, int count)
        {
            long usable = validation.Length - context - 1;
            if (usable <= 0) throw new UsageException($"The validation text has {validation.Length} tokens, not more than --context {context}; give a larger corpus.");
            var offsets = new long[batch];
            long windows = batch * count;
            for (int i = 0; i < batch; i++) offsets[i] = (index * batch + i) * usable / windows;
            return Windows(validation, offsets);
        }

        private (torch.Tensor, torch.Tensor) Windows(TokenStream tokens, ReadOnlySpan<long> offsets)
        {
            var data = new long[offsets.Length * (context + 1)];
            for (int i = 0; i < offsets.Length; i++) tokens.Read(offsets[i], data.AsSpan((int)(i * (context + 1)), (int)(context + 1)));
            var all = torch.tensor(data, new[] { (long)offsets.Length, context + 1 });
            return (all.narrow(1, 0, context).contiguous(), all.narrow(1, 1, context).contiguous());
        }
    }
}
