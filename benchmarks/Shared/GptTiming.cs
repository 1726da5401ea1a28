using ModelParallel.Examples.Gpt.Model;
using ModelParallel.Examples.Gpt.Training;
using TorchSharp;

namespace ModelParallel.Benchmarks
{
    /// <summary>How the GPT benchmarks (GptStep, Peers) time the GPT example's training step.</summary>
    internal static class GptTiming
    {
        /// <summary>Sequences per step over all dp ranks.</summary>
        public const long GlobalBatch = 16;

        /// <summary>
        /// Milliseconds per step of the GPT example's training (AdamW, vocabulary-parallel loss; 1F1B over 4 micro-batches
        /// when pp &gt; 1) on one fixed global batch of random tokens (seed 7), each dp rank its rows.
        /// </summary>
        public static double Milliseconds(GptConfig config, MeshShape mesh, int warmup, int steps)
        {
            // Steps shapes only the learning-rate schedule: a warm-up longer than `warmup` steps (StepTiming.Warmup) runs
            // past it, which changes the rate's values and not the time a step takes.
            var options = new TrainingOptions(config, mesh) { Microbatches = mesh.Pp > 1 ? 4 : 1, Batch = GlobalBatch / mesh.Dp, Steps = warmup + steps };
            var training = new GptTraining(options);
            var context = RankContext.Current!;
            using var tokens = torch.randint(config.Vocabulary, new[] { GlobalBatch, config.Context + 1 }, generator: new torch.Generator(7));
            using var rows = tokens.narrow(0, context.Coordinates.Dp * options.Batch, options.Batch);
            using var input = rows.narrow(1, 0, config.Context).contiguous();
            using var target = rows.narrow(1, 1, config.Context).contiguous();
            int step = 0;
            return StepTiming.Milliseconds(warmup, steps, () => training.Step(step++, input, target));
        }
    }
}
