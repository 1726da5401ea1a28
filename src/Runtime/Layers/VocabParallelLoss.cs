using System;
using TorchSharp;

namespace ModelParallel.Layers
{
    /// <summary>
    /// Cross-entropy for a model whose forward returns logits sharded on the vocabulary (S(-1)): a vocab-parallel
    /// language model's head, under <see cref="Pipelining.PipelineExecutor"/>. The logits are never gathered: a max and
    /// two sums are all-reduced over tp, in one fused autograd function whose gradient is softmax − one-hot (Megatron's
    /// form; at tp = 1 and outside a run the same function, with no collective). A vocabulary padded to a multiple of
    /// the mesh (as Megatron pads GPT-2's 50257 tokens) is given as the real vocabulary size: the padded columns are
    /// -inf, so they never win and change neither the loss nor any gradient. The logits are only read.
    /// </summary>
    public sealed class VocabParallelLoss
    {
        /// <param name="vocabulary">The real vocabulary size; the head may be wider (padded), never narrower.</param>
        /// <param name="ignoreIndex">Targets equal to it count for nothing, as in torch.</param>
        public VocabParallelLoss(long vocabulary, long ignoreIndex = -100)
        {
            if (vocabulary < 1) throw new ArgumentOutOfRangeException(nameof(vocabulary), vocabulary, "The vocabulary must have at least one token.");
            Vocabulary = vocabulary;
            IgnoreIndex = ignoreIndex;
        }

        /// <summary>The real vocabulary size: logits for ids at or above it are padding.</summary>
        public long Vocabulary { get; }

        /// <summary>The target value that is ignored.</summary>
        public long IgnoreIndex { get; }

        /// <summary>Mean cross-entropy of <paramref name="logits"/> [..., vocabulary / tp] against <paramref name="targets"/> [...].</summary>
        public torch.Tensor Compute(torch.Tensor logits, torch.Tensor targets) => Compute(logits, targets, overwrite: false);

        /// <summary>As <see cref="Compute(torch.Tensor, torch.Tensor)"/>, computed in the logits' own memory: for a caller that never reads them again.</summary>
        internal torch.Tensor ComputeOverwriting(torch.Tensor logits, torch.Tensor targets) => Compute(logits, targets, overwrite: true);

        private torch.Tensor Compute(torch.Tensor logits, torch.Tensor targets, bool overwrite)
        {
            var context = RankContext.Current;
            long local = logits.shape[^1], tp = context?.Mesh.Tp ?? 1, start = tp == 1 ? 0 : context!.Coordinates.Tp * local;
            CheckCovers(local * tp, logits);
            context?.ThrowIfDeferredFailure();
            using var site = Communication.CollectiveSite.Enter("VocabParallelLoss");
            return Autograd.VocabParallelCrossEntropy.apply(logits.reshape(-1, local), targets.reshape(-1), start, Vocabulary, IgnoreIndex, context?.TensorParallel!, overwrite);
        }

        /// <summary>
        /// The whole logits of one position, for choosing the next token: this rank's shard [vocabulary / tp] all-gathered
        /// over tp (a single row; the training loss never gathers), with the padded columns at -inf.
        /// </summary>
        public torch.Tensor Whole(torch.Tensor shardRow)
        {
            if (shardRow.dim() != 1) throw new ArgumentException($"Whole takes one position's logits [vocabulary / tp]; got [{string.Join(", ", shardRow.shape)}].", nameof(shardRow));
            var context = RankContext.Current;
            var whole = context is null || context.Mesh.Tp == 1 ? shardRow : context.TensorParallel.AllGather(shardRow.contiguous(), 0);
            return Masked(whole, 0, whole.shape[0]);
        }

        /// <summary>The logits with the columns of padded ids set to -inf; <paramref name="start"/> is the id of column 0, <paramref name="covered"/> the ids all ranks' columns cover.</summary>
        private torch.Tensor Masked(torch.Tensor logits, long start, long covered)
        {
            CheckCovers(covered, logits);
            long local = logits.shape[^1];
            if (start + local <= Vocabulary) return logits; // no padded column here
            var ids = torch.arange(start, start + local, device: logits.device);
            return logits.masked_fill(ids.ge(Vocabulary), float.NegativeInfinity);
        }

        private void CheckCovers(long covered, torch.Tensor logits)
        {
            if (covered < Vocabulary)
                throw new ArgumentException($"VocabParallelLoss: the logits cover {covered} ids, fewer than the vocabulary of {Vocabulary} (shape [{string.Join(", ", logits.shape)}] on this rank).", nameof(logits));
        }
    }
}
