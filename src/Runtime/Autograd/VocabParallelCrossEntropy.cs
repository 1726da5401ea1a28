using System;
using System.Collections.Generic;
using ModelParallel.Communication;
using TorchSharp;
using static TorchSharp.torch.autograd;

namespace ModelParallel.Autograd
{
    /// <summary>
    /// Mean cross-entropy of logits [N, V / tp] sharded on the vocabulary against whole targets [N], as one autograd
    /// function (Megatron's vocab-parallel cross-entropy): the row max, the sum of exponentials and the target's logit
    /// are all-reduced over tp (the logits are never gathered), and the gradient is softmax − one-hot, computed in the
    /// one buffer forward filled. The composed form (masked_fill, log_softmax, nll and their backward) makes five
    /// passes over N × V floats and three buffers of that size; at GPT-2's vocabulary those dominated the step.
    /// Columns of ids at or above the real vocabulary (padding) are -inf: they never win and get no gradient. Targets
    /// equal to the ignore index count for nothing. The caller's logits are only read, unless it says they are its own
    /// intermediate (the pipeline executor's last stage): then they are that buffer, forward and backward, as in
    /// Megatron, which saves two allocations of N × V floats (about 100 ms of page faults each per step at GPT-2's
    /// vocabulary without huge pages).
    /// </summary>
    internal sealed class VocabParallelCrossEntropy : SingleTensorFunction<VocabParallelCrossEntropy>
    {
        public override string Name => nameof(VocabParallelCrossEntropy);

        /// <summary>vars: logits [N, local], targets [N] (int64), the id of column 0, the real vocabulary, the ignore index, the tp communicator, whether the logits may be overwritten.</summary>
        public override torch.Tensor forward(AutogradContext ctx, params object[] vars)
        {
            var logits = (torch.Tensor)vars[0];
            var targets = (torch.Tensor)vars[1];
            long start = (long)vars[2], vocabulary = (long)vars[3], ignore = (long)vars[4];
            var communicator = vars[5] as ICommunicator; // null outside a run
            bool overwrite = (bool)vars[6];
            ctx.save_data("consumed", false);
            ctx.save_data("overwrite", overwrite);
            long local = logits.shape[1], real = Math.Clamp(vocabulary - start, 0, local);
            using var scope = torch.NewDisposeScope();

            // Row max over this rank's real columns, then over tp (a rank with only padding contributes -inf).
            var max = real > 0 ? logits.narrow(1, 0, real).amax(new long[] { 1 }, keepdim: true) : torch.full(logits.shape[0], 1, float.NegativeInfinity, dtype: logits.dtype, device: logits.device);
            if (communicator is { Size: > 1 }) communicator.AllReduce(max, ReduceOp.Max);
            // The one N × local buffer: shifted logits, then exponentials, then the softmax, then the gradient.
            var work = overwrite && logits.is_contiguous() ? logits.sub_(max).alias() : logits - max;
            if (real < local) work.narrow(1, real, local - real).fill_(float.NegativeInfinity);

            var mine = targets.ge(start).logical_and_(targets.lt(start + local));
            var column = (targets - start).masked_fill_(mine.logical_not(), 0);
            var picked = work.gather(1, column.unsqueeze(1)).squeeze(1).masked_fill_(mine.logical_not(), 0);
            work.exp_();
            var total = work.sum(1);
            if (communicator is { Size: > 1 })
            {
                communicator.AllReduce(picked);
                communicator.AllReduce(total);
            }
            var valid = targets.ne(ignore);
            var count = valid.sum().to(logits.dtype).clamp_min_(1); // torch gives NaN for no valid target; 0 here, as a mean over nothing
            var loss = (total.log() - picked).masked_fill_(valid.logical_not(), 0).sum() / count;
            work.div_(total.unsqueeze(1));

            // Backward's scale per row: 1 / count where the target counts, 0 where it is ignored; the one-hot only where it is this rank's column.
            var scale = valid.to(logits.dtype) / count;
            var hit = mine.logical_and_(valid).to(logits.dtype);
            ctx.save_for_backward(new List<torch.Tensor> { work.MoveToOuterDisposeScope(), column.MoveToOuterDisposeScope(), hit.MoveToOuterDisposeScope(), scale.MoveToOuterDisposeScope() });
            BackwardGuard.SaveSite(ctx);
            return loss.MoveToOuterDisposeScope();
        }

        public override List<torch.Tensor> backward(AutogradContext ctx, torch.Tensor gradOutput) =>
            BackwardGuard.Run(ctx, gradOutput, arguments: 7, grad =>
            {
                // The caller's own buffer (overwrite) becomes the gradient; a caller's loss keeps its softmax, so that a
                // second backward (retain_graph) gives the same gradient again.
                bool overwrite = (bool)ctx.get_data("overwrite");
                if (overwrite && ctx.get_data("consumed") is true)
                    throw new InvalidOperationException("VocabParallelLoss: backward ran twice through one pipeline loss; its buffer became the first gradient.");
                ctx.save_data("consumed", true);
                var saved = ctx.get_saved_variables();
                var (softmax, column, hit, scale) = (saved[0], saved[1], saved[2], saved[3]);
                var gradient = overwrite ? softmax : softmax.clone();
                // softmax − one-hot, times d(loss)/d(row loss).
                gradient.scatter_add_(1, column.unsqueeze(1), hit.neg().unsqueeze(1));
                return gradient.mul_((scale * grad).unsqueeze(1));
            });
    }
}
