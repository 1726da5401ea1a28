using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Linq;
using Microsoft.ML.Tokenizers;
using ModelParallel.Examples.Gpt.Data;
using TorchSharp;

namespace ModelParallel.Examples.Gpt.Training
{
    /// <summary>The whole job: the token cache, training with validation, the report, the plot and the sample.</summary>
    public static class GptJob
    {
        /// <summary>What rank 0 saw: validation before and after training, and the sample.</summary>
        public sealed record Outcome(double InitialValidation, double FinalValidation, string Sample);

        public static int Run(TrainingOptions options, RunOptions runOptions, Corpus corpus, Tokenizer tokenizer, string cacheRoot,
            string output, string prompt, int sampleTokens, int topK)
        {
            using var reporter = Reporter.IsRankZeroProcess ? new Reporter(options.Steps, output, Reporter.CanRedraw) : null;
            var config = options.Config;
            reporter?.Say($"GPT: {config.Depth} blocks, width {config.Width}, {config.Heads} heads, context {config.Context}, vocabulary {config.Vocabulary} padded to {options.Vocabulary} "
                + $"({config.Parameters(options.Mesh.Tp) / 1e6:F1} M parameters) on {options.Mesh} ({(MpiProcesses() is { } n ? $"{n} MPI processes" : "threads")}), schedule {options.Schedule}, {options.Microbatches} micro-batches");
            var outcomes = reporter is null ? Train(options, runOptions, corpus, tokenizer, cacheRoot, null, prompt, sampleTokens, topK)
                : reporter.Around(() => Train(options, runOptions, corpus, tokenizer, cacheRoot, reporter, prompt, sampleTokens, topK));
            if (reporter is null) return 0;
            var outcome = outcomes[0]!;
            reporter.SavePlot();
            Console.WriteLine($"validation loss: initial {outcome.InitialValidation:F3}, final {outcome.FinalValidation:F3} ({outcome.FinalValidation / outcome.InitialValidation:F2} × initial)");
            Console.WriteLine($"metrics: {System.IO.Path.GetFullPath(reporter.MetricsPath)}");
            Console.WriteLine($"loss plot: {System.IO.Path.GetFullPath(reporter.PlotPath)}");
            Console.WriteLine($"sample ({(topK <= 1 ? "greedy" : $"top-{topK}")}): {prompt}{outcome.Sample}");
            return 0;
        }

        private static Outcome?[] Train(TrainingOptions options, RunOptions runOptions, Corpus corpus, Tokenizer tokenizer, string cacheRoot,
            Reporter? reporter, string prompt, int sampleTokens, int topK) => Ranks.Run(options.Mesh, context =>
        {
            bool printer = context.Rank == 0 && reporter is not null;
            // Rank 0 tokenizes (once per corpus and tokenizer); the others open its cache, or build their own on another machine.
            TokenFiles? files = context.Rank == 0 ? TokenCache.Open(corpus, tokenizer, "gpt2", cacheRoot, printer ? reporter!.Say : null) : null;
            context.World.Barrier();
            files ??= TokenCache.Open(corpus, tokenizer, "gpt2", cacheRoot);
            using var _ = files;
            if (printer) reporter!.Say($"tokens: {files.Train.Length:N0} for training, {files.Validation.Length:N0} for validation (cache {files.Directory})");
            var batches = new Batches(files.Train, files.Validation, options.Config.Context, options.Batch, options.Mesh.Dp, options.Seed);
            var training = new GptTraining(options);
            int first = 0;
            if (options.Resume)
            {
                var resumed = training.Load(options.Checkpoint!);
                first = (int)resumed.Step;
                if (printer)
                {
                    reporter!.Say($"resumed at step {first} from {options.Checkpoint} (saved on {resumed.Metadata.GetValueOrDefault("mesh", "?")})");
                    if (resumed.Metadata.GetValueOrDefault("global_batch") is { } saved && saved != options.GlobalBatch.ToString(System.Globalization.CultureInfo.InvariantCulture))
                        reporter.Say($"note: the checkpoint was trained on {saved} sequences per step (--batch × --dp); this run uses {options.GlobalBatch}, so its batches differ from the saved run's");
                }
                if (first >= options.Steps) throw new UsageException($"The checkpoint in {options.Checkpoint} is at step {first}; --steps {options.Steps} leaves nothing to train.");
            }
            double initial = training.Validate(batches);
            if (printer)
            {
                reporter!.InitialValidation = initial;
                reporter.FirstStep = first;
                reporter.Say($"step {first}: validation loss {initial:F3}");
            }
            double tokensPerStep = options.Batch * options.Mesh.Dp * options.Config.Context, flopsPerToken = options.Config.FlopsPerToken(options.Mesh.Tp);
            double validation = initial;
            for (int step = first; step < options.Steps; step++)
            {
                var (input, target) = batches.Training(step, context.Coordinates.Dp);
                var clock = Stopwatch.StartNew();
                double loss = training.Step(step, input, target);
                double seconds = clock.Elapsed.TotalSeconds;
                bool validate = (step + 1) % options.ValidateEvery == 0 || step + 1 == options.Steps;
                double? validated = validate ? validation = training.Validate(batches) : null;
                var (bytes, resident) = Memory(context, training.StateBytes());
                if (printer)
                    reporter!.Report(new StepReport(step + 1, loss, validated, seconds, tokensPerStep / seconds, tokensPerStep * flopsPerToken / seconds, bytes, resident));
                if (options.SaveEvery > 0 && ((step + 1) % options.SaveEvery == 0 || step + 1 == options.Steps))
                {
                    var saved = training.Save(options.Checkpoint!, new Checkpointing.CheckpointState
                    {
                        Step = step + 1,
                        DataPosition = step + 1, // batches are drawn from (seed, step): the step is the data position
                        Metadata = new System.Collections.Generic.Dictionary<string, string>
                        {
                            ["mesh"] = options.Mesh.ToString(),
                            ["global_batch"] = options.GlobalBatch.ToString(System.Globalization.CultureInfo.InvariantCulture),
                            ["seed"] = options.Seed.ToString(System.Globalization.CultureInfo.InvariantCulture),
                        },
                    });
                    if (printer) reporter!.Say($"step {step + 1}: checkpoint saved in {saved}");
                }
            }
            var continuation = sampleTokens > 0 ? training.Generate(tokenizer.EncodeToIds(prompt).ToList(), sampleTokens, topK, options.Seed) : new();
            return new Outcome(initial, validation, tokenizer.Decode(continuation) ?? "");
        }, runOptions);

        /// <summary>Every rank's tensor bytes and its process's peak resident memory, gathered to all.</summary>
        private static (long[] Bytes, long[] Resident) Memory(RankContext context, long bytes)
        {
            using var mine = torch.tensor(new[] { bytes, Reporter.PeakResidentBytes() });
            using var all = context.World.AllGather(mine, 0);
            var values = all.data<long>().ToArray();
            return (values.Where((_, i) => i % 2 == 0).ToArray(), values.Where((_, i) => i % 2 == 1).ToArray());
        }

        private static int? MpiProcesses() => int.TryParse(Environment.GetEnvironmentVariable("PMI_SIZE"), out var n) ? n : null;
    }
}
