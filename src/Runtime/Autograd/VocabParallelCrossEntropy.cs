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
    /// one buffer forward filled. Forward fills it block of rows by block (max, exp, sum while the block is in cache)
    /// with exp(logit − this rank's row max); the softmax's row factor is applied in backward, in the one pass that
    /// scales the gradient: one read and one write of N × V floats each way. The composed form (masked_fill,
    /// log_softmax, nll and their backward) makes five passes over N × V floats and three buffers of that size; at
    /// GPT-2's vocabulary those dominated the step.
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

            var mine = targets.ge(start).logical_and_(targets.lt(start + local));
            var column = (targets - start).masked_fill_(mine.logical_not(), 0);
            var picked = logits.gather(1, column.unsqueeze(1)).squeeze(1); // the target's logit, read before any overwrite
            // The one N × local buffer: exp(logits − this rank's row max), then, in backward, the gradient.
            bool inPlace = overwrite && logits.is_contiguous();
            var work = inPlace ? logits.alias() : torch.empty_like(logits);
            var (max, sum) = Exponentials(logits, work, inPlace, real);

            // Over tp: the row max, each rank's sum rescaled to it, and the target's logit (0 from ranks without it).
            var globalMax = max.clone();
            if (communicator is { Size: > 1 }) communicator.AllReduce(globalMax, ReduceOp.Max);
            var rescale = (max - globalMax).exp_().nan_to_num_(0); // 0 for a rank with only padding (−inf − m)
            var total = sum.mul_(rescale);
            picked.sub_(globalMax).masked_fill_(mine.logical_not(), 0);
            if (communicator is { Size: > 1 })
            {
                communicator.AllReduce(picked);
                communicator.AllReduce(total);
            }
            var valid = targets.ne(ignore);
            var count = valid.sum().to(logits.dtype).clamp_min_(1); // torch gives NaN for no valid target; 0 here, as a mean over nothing
            var loss = (total.log() - picked).masked_fill_(valid.logical_not(), 0).sum() / count;

            // Backward's factors per row: the softmax is work × rescale / total; d(loss)/d(row loss) is 1 / count where the
            // target counts and 0 where it is ignored; the one-hot is only where the target is this rank's column.
            var scale = valid.to(logits.dtype) / count;
            var softmaxScale = rescale.div_(total).mul_(scale);
            var hit = mine.logical_and_(valid).to(logits.dtype).mul_(scale);
            ctx.save_for_backward(new List<torch.Tensor> { work.MoveToOuterDisposeScope(), column.MoveToOuterDisposeScope(), hit.MoveToOuterDisposeScope(), softmaxScale.MoveToOuterDisposeScope() });
            BackwardGuard.SaveSite(ctx);
            return loss.MoveToOuterDisposeScope();
        }

        /// <summary>Bytes of logits per block of rows: a block stays in cache across its four passes.</summary>
        private const long BlockBytes = 4L << 20;

        /// <summary>
        /// Writes exp(logits − row max) into <paramref name="work"/> (which may be the logits) block of rows by block, so each
        /// block is read from memory once and written once where whole-tensor passes (max, subtract, exp, sum) would
        /// stream N × local floats four times. Padding columns (from <paramref name="real"/> on) get 0. Returns the row max
        /// over the real columns [N] (−inf where none is real) and the row sums of the exponentials [N].
        /// </summary>
        private static (torch.Tensor Max, torch.Tensor Sum) Exponentials(torch.Tensor logits, torch.Tensor work, bool inPlace, long real)
        {
            long rows = logits.shape[0], local = logits.shape[1];
            var max = torch.full(rows, float.NegativeInfinity, dtype: logits.dtype, device: logits.device);
            var sum = torch.zeros(rows, dtype: logits.dtype, device: logits.device);
            if (real == 0)
            {
                work.zero_();
                return (max, sum);
            }
            long block = Math.Max(1, BlockBytes / (local * logits.element_size()));
            for (long first = 0; first < rows; first += block)
            {
                long count = Math.Min(block, rows - first);
                using var inner = torch.NewDisposeScope();
                var x = logits.narrow(0, first, count);
                var w = work.narrow(0, first, count);
                var m = x.narrow(1, 0, real).amax(new long[] { 1 }, keepdim: true);
                if (!inPlace) w.copy_(x);
                w.sub_(m).exp_();
                if (real < local) w.narrow(1, real, local - real).zero_();
                max.narrow(0, first, count).copy_(m.squeeze(1));
                sum.narrow(0, first, count).copy_(w.sum(1));
            }
            return (max, sum);
        }

        public override List<torch.Tensor> backward(AutogradContext ctx, torch.Tensor gradOutput) =>
            BackwardGuard.Run(ctx, gradOutput, arguments: 7, grad =>
            {
                // The caller's own buffer (overwrite) becomes the gradient; a caller's loss keeps its buffer and writes the
                // gradient to a new one (in the same pass that scales it), so that a second backward (retain_graph) gives
                // the same gradient again.
                bool overwrite = (bool)ctx.get_data("overwrite");
                if (overwrite && ctx.get_data("consumed") is true)
                    throw new InvalidOperationException("VocabParallelLoss: backward ran twice through one pipeline loss; its buffer became the first gradient.");
                ctx.save_data("consumed", true);
                var saved = ctx.get_saved_variables();
                var (exponentials, column, hit, softmaxScale) = (saved[0], saved[1], saved[2], saved[3]);
                // (softmax − one-hot) × d(loss)/d(row loss), times the loss's gradient: one pass over the buffer.
                using var rowScale = (softmaxScale * grad).unsqueeze(1);
                using var hitScale = (hit * grad).neg_().unsqueeze(1);
                var gradient = overwrite ? exponentials.mul_(rowScale) : exponentials.mul(rowScale);
                return gradient.scatter_add_(1, column.unsqueeze(1), hitScale);
            });
    }
}
