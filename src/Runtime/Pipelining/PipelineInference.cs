using TorchSharp;

namespace ModelParallel.Pipelining
{
    public sealed partial class PipelineExecutor
    {
        /// <summary>
        /// Forward only, without gradients, for evaluation or generation: runs <paramref name="input"/> (the whole batch,
        /// one micro-batch) through every stage in order, activations going to the next stage's rank by send/receive.
        /// Returns the last stage's output on the pp rank that runs it (for a language model, its tp shard of the logits),
        /// and null on every other pp rank. Every pp rank must call it; only the first stage reads the input.
        /// </summary>
        public torch.Tensor? Forward(torch.Tensor input)
        {
            context.ThrowIfDeferredFailure();
            int pp = Schedule.Stages, stages = pp * Schedule.VirtualStages, me = context.Coordinates.Pp;
            using var noGrad = torch.no_grad();
            torch.Tensor? carried = null, output = null;
            try
            {
                for (int stage = 0; stage < stages; stage++)
                {
                    if (stage % pp != me) continue;
                    // Activations travel on the tags the training step uses for them (2 × stage); no step runs meanwhile.
                    var x = stage == 0 ? input : (stage - 1) % pp == me ? carried! : PipelineTransport.Receive(pipeline, (stage - 1) % pp, 2 * stage, context.Device);
                    context.Pipeline.Running = true;
                    context.Pipeline.CurrentStage = stage;
                    var y = model.forward(x);
                    context.Pipeline.Running = false;
                    if (stage == stages - 1) output = y;
                    else if ((stage + 1) % pp == me) carried = y;
                    else PipelineTransport.Send(pipeline, y, (stage + 1) % pp, 2 * (stage + 1));
                }
            }
            finally
            {
                context.Pipeline.Running = false;
            }
            return output;
        }

        /// <summary>The pp rank that runs the last stage, where <see cref="Forward"/> returns the output.</summary>
        public int LastStageRank => (Schedule.Stages * Schedule.VirtualStages - 1) % Schedule.Stages;
    }
}
