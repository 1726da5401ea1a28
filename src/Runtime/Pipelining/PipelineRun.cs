using System;
using TorchSharp;

namespace ModelParallel.Pipelining
{
    /// <summary>
    /// What the generated interceptors call in the forward of a pipelined model. The executor runs the user's
    /// single forward once per (micro-batch, virtual stage); these gates make it do only that stage's part:
    /// a [FirstStage] or [LastStage] layer, or a block of another chunk, passes its input through unchanged.
    /// </summary>
    public static class PipelineRun
    {
        /// <summary>Whether a [FirstStage] / [LastStage] layer runs now.</summary>
        public static bool Runs(string layer, PipelineRole role)
        {
            var context = RankContext.Current;
            if (context is null) return true;
            var state = context.Pipeline;
            if (!state.Running)
            {
                if (!PipelineBuild.Holds(context, role))
                    throw new InvalidOperationException(
                        $"Layer '{layer}' ({role} stage) is not on pp rank {context.Coordinates.Pp} ({context.Mesh}): run a pipelined model through PipelineExecutor.Step, not forward.");
                return true;
            }
            int last = context.Mesh.Pp * state.VirtualStages - 1;
            return role == PipelineRole.First ? state.CurrentStage == 0 : state.CurrentStage == last;
        }

        /// <summary>A block of a [PipelineStages] list: its forward on the chunk being run, else the input unchanged.</summary>
        public static torch.Tensor Block(string layer, torch.nn.Module<torch.Tensor, torch.Tensor> block, torch.Tensor input)
        {
            var context = RankContext.Current;
            if (context is null) return block.forward(input);
            var state = context.Pipeline;
            var chunk = state.ChunkOf(block);
            if (!state.Running)
            {
                if (chunk == -1)
                    throw new InvalidOperationException(
                        $"A block of '{layer}' is held by another pp rank ({context.Mesh}): run a pipelined model through PipelineExecutor.Step, not forward.");
                return block.forward(input);
            }
            return chunk is null || chunk == state.CurrentStage / context.Mesh.Pp ? block.forward(input) : input;
        }
    }
}
