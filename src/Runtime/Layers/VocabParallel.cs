using System;
using ModelParallel.Autograd;
using ModelParallel.Communication;
using TorchSharp;
using TorchSharp.Modules;

namespace ModelParallel.Layers
{
    /// <summary>
    /// What the generated interceptors call for a [VocabParallel] Embedding and for cross-entropy over logits sharded
    /// on the vocabulary (the output of a ColumnParallel head). Outside Ranks.Run, or at tp = 1, the plain calls.
    /// </summary>
    public static class VocabParallel
    {
        /// <summary>The rows this rank builds: num_embeddings / tp (which must divide).</summary>
        public static long LocalRows(string layer, long numEmbeddings)
        {
            var context = RankContext.Current;
            if (context is null || context.Mesh.Tp == 1) return numEmbeddings;
            if (numEmbeddings % context.Mesh.Tp != 0)
                throw new PartitionException($"Layer '{layer}' (VocabParallel): num_embeddings = {numEmbeddings} is not divisible by tp = {context.Mesh.Tp} ({context.Mesh}).");
            return numEmbeddings / context.Mesh.Tp;
        }

        /// <summary>
        /// Re-draws the shard's rows from the (layer, tp rank) generator seeded by <see cref="RunOptions.Seed"/>, as
        /// partitioned Linear layers are: TorchSharp's own initialisation uses the process-global generator, which rank
        /// threads share, so the shards would depend on thread timing. A <paramref name="paddingIndex"/> row in this
        /// rank's range is zero, as torch makes it. Outside a run the layer is as TorchSharp built it.
        /// </summary>
        public static Embedding Seeded(string layer, Embedding embedding, long? paddingIndex) => Draw(embedding, paddingIndex, sharded: true);

        /// <summary>
        /// A replicated embedding (not partitioned), drawn from the layer's generator seeded by <see cref="RunOptions.Seed"/>:
        /// the same rows on every rank and in every run with that seed.
        /// </summary>
        public static Embedding SeededReplicated(string layer, Embedding embedding, long? paddingIndex) => Draw(embedding, paddingIndex, sharded: false);

        private static Embedding Draw(Embedding embedding, long? paddingIndex, bool sharded)
        {
            var context = RankContext.Current;
            if (context is null || context.Validating || embedding.weight is not { } weight) return embedding;
            long ordinal = context.NextLayerOrdinal(); // every rank numbers every layer, including those it builds on the meta device
            if (weight.device.type == DeviceType.META) return embedding;
            int shard = sharded ? context.Coordinates.Tp : 0;
            long rows = weight.shape[0], start = shard * rows;
            // A new parameter, as partitioned Linear layers get theirs: the object the module registers is the one marked.
            var drawn = new Parameter(LayerInitializer.Normal(weight.shape, context.Seed, ordinal, shard, weight.device, weight.dtype));
            using (torch.no_grad())
                if (paddingIndex is long pad && pad >= start && pad < start + rows) drawn[pad - start].zero_();
            embedding.weight = drawn;
            if (sharded) ReplicaCheck.MarkShard(drawn);
            return embedding;
        }

        /// <summary>Ids R → this rank's rows for the ids in its range, zeros elsewhere (P) → all-reduce (g) → R.</summary>
        public static torch.Tensor EmbeddingForward(string layer, Embedding self, torch.Tensor ids)
        {
            var context = LayerOwnership.ContextFor(layer, self, out var site);
            using var collectiveSite = CollectiveSite.Enter(site);
            if (context is null || context.Mesh.Tp == 1) return self.forward(ids);
            context.ThrowIfDeferredFailure();
            var weight = context.Tapped(self.weight)!;
            long local = weight.shape[0], start = context.Coordinates.Tp * local;
            var outside = ids.lt(start).logical_or(ids.ge(start + local));
            var localIds = (ids - start).masked_fill(outside, 0);
            var rows = weight.index_select(0, localIds.flatten()).view(Shape(ids, weight.shape[1]));
            var partial = rows.masked_fill(outside.unsqueeze(-1), 0);
            return TensorParallel.ReduceFromTensorParallel(partial, context.TensorParallel);
        }

        /// <summary>
        /// Cross-entropy of logits [N, vocabulary / tp] sharded on the vocabulary, against whole targets [N]: a max and
        /// two sums all-reduced over tp (the logits are never gathered), and with label smoothing a third sum (of every
        /// logit, for the mean of -log p over the vocabulary). Supports ignore_index, label_smoothing and the reductions,
        /// as torch does; class weights are not supported with a sharded vocabulary.
        /// </summary>
        public static torch.Tensor CrossEntropy(string site, torch.Tensor input, torch.Tensor target, torch.Tensor? weight,
            long ignore_index, torch.nn.Reduction reduction, double label_smoothing)
        {
            var context = RankContext.Current;
            if (context is null || context.Mesh.Tp == 1)
                return torch.nn.functional.cross_entropy(input, target, weight, ignore_index, reduction, label_smoothing);
            if (weight is not null)
                throw new NotSupportedException($"{site}: cross-entropy over vocabulary-sharded logits does not support class weights ({context.Mesh}).");
            if (input.dim() != 2)
                throw new ArgumentException($"{site}: cross-entropy over vocabulary-sharded logits needs them as [tokens, vocabulary]; got [{string.Join(", ", input.shape)}] locally. Flatten them with view(-1, vocabulary).");
            context.ThrowIfDeferredFailure();
            using var collectiveSite = CollectiveSite.Enter(site);
            var communicator = context.TensorParallel;
            long local = input.shape[1], start = context.Coordinates.Tp * local;
            torch.Tensor max;
            using (torch.no_grad())
            {
                max = input.amax(new long[] { -1 }, keepdim: true);
                communicator.AllReduce(max, ReduceOp.Max);
            }
            var shifted = input - max;
            var sumExp = TensorParallel.ReduceFromTensorParallel(shifted.exp().sum(-1), communicator);
            var outside = target.lt(start).logical_or(target.ge(start + local));
            var picked = shifted.gather(-1, (target - start).masked_fill(outside, 0).unsqueeze(-1)).squeeze(-1).masked_fill(outside, 0);
            var targetLogit = TensorParallel.ReduceFromTensorParallel(picked, communicator);
            var valid = target.ne(ignore_index);
            var logSumExp = sumExp.log();
            var losses = logSumExp - targetLogit; // -log p of the target
            if (label_smoothing != 0)
            {
                // torch's smoothing: (1 - e) * (-log p_target) + e / C * sum over all C classes of -log p_c, where
                // sum_c -log p_c = C * logsumexp - sum_c shifted_c, and sum_c shifted_c is this rank's sum, all-reduced.
                long classes = local * context.Mesh.Tp;
                var shiftedSum = TensorParallel.ReduceFromTensorParallel(shifted.sum(-1), communicator);
                losses = (1 - label_smoothing) * losses + label_smoothing / classes * (classes * logSumExp - shiftedSum);
            }
            losses = losses.masked_fill(valid.logical_not(), 0);
            return reduction switch
            {
                torch.nn.Reduction.Mean => losses.sum() / valid.sum().to(losses.dtype),
                torch.nn.Reduction.Sum => losses.sum(),
                _ => losses,
            };
        }

        private static long[] Shape(torch.Tensor ids, long dimension)
        {
            var shape = new long[ids.dim() + 1];
            for (int d = 0; d < ids.dim(); d++) shape[d] = ids.shape[d];
            shape[^1] = dimension;
            return shape;
        }
    }
}
