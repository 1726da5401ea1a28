using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Text.Json;
using Spectre.Console;

namespace ModelParallel.Examples.Gpt.Training
{
    /// <summary>
    /// What a person watching sees, from rank 0 only: a live progress bar (step, loss, tokens/s, elapsed, remaining) on
    /// a terminal, or one plain line per step when the output is redirected (CI logs); every step in a JSON Lines
    /// metrics file; at the end the loss curves as a PNG.
    /// </summary>
    public sealed class Reporter : IDisposable
    {
        private readonly int steps;
        private readonly StreamWriter metrics;
        private readonly System.Diagnostics.Stopwatch clock = System.Diagnostics.Stopwatch.StartNew();
        private ProgressTask? task;

        public Reporter(int steps, string outputDirectory, bool interactive)
        {
            this.steps = steps;
            Interactive = interactive;
            Directory.CreateDirectory(outputDirectory);
            MetricsPath = Path.Combine(outputDirectory, "metrics.jsonl");
            PlotPath = Path.Combine(outputDirectory, "loss.png");
            metrics = new StreamWriter(MetricsPath, append: false);
        }

        /// <summary>True on a terminal that can redraw; false when stdout is redirected.</summary>
        public bool Interactive { get; }

        public string MetricsPath { get; }

        public string PlotPath { get; }

        public List<StepReport> Reports { get; } = new();

        /// <summary>The step the run starts from (0, or the resumed checkpoint's).</summary>
        public int FirstStep { get; set; }

        /// <summary>The validation loss before the first step, the first point of the validation curve.</summary>
        public double? InitialValidation { get; set; }

        /// <summary>Whether this process prints: the one with world rank 0 (threads: the only process).</summary>
        public static bool IsRankZeroProcess => (Environment.GetEnvironmentVariable("PMI_RANK") ?? "0") == "0";

        /// <summary>Whether a live display works here: a terminal that redraws, not a redirected stream.</summary>
        public static bool CanRedraw => !Console.IsOutputRedirected && AnsiConsole.Profile.Capabilities.Interactive;

        /// <summary>Runs <paramref name="body"/> with the live display around it when interactive, else plainly.</summary>
        public T Around<T>(Func<T> body)
        {
            if (!Interactive) return body();
            T result = default!;
            AnsiConsole.Progress()
                .AutoClear(false)
                .Columns(new TaskDescriptionColumn { Alignment = Justify.Left }, new ProgressBarColumn(), new PercentageColumn(), new ElapsedTimeColumn(), new RemainingTimeColumn())
                .Start(context =>
                {
                    task = context.AddTask("starting", maxValue: steps);
                    result = body();
                });
            return result;
        }

        /// <summary>A line of its own (a message above the bar, or a plain line).</summary>
        public void Say(string line)
        {
            if (Interactive) AnsiConsole.MarkupLine(Markup.Escape(line));
            else Console.WriteLine(line);
        }

        public void Report(StepReport report)
        {
            Reports.Add(report);
            metrics.WriteLine(JsonSerializer.Serialize(new
            {
                step = report.Step,
                train_loss = report.TrainLoss,
                validation_loss = report.ValidationLoss,
                seconds = report.Seconds,
                tokens_per_second = report.TokensPerSecond,
                model_flops_per_second = report.ModelFlopsPerSecond,
                rank_tensor_bytes = report.RankBytes,
                rank_peak_rss_bytes = report.RankPeakResidentBytes,
            }));
            metrics.Flush();
            string validation = report.ValidationLoss is { } v ? $"  val {v:F3}" : "";
            if (task is not null)
            {
                task.Description = $"step {report.Step}/{steps}  loss {report.TrainLoss:F3}{validation}  {report.TokensPerSecond:N0} tok/s";
                task.Value = report.Step;
                if (report.ValidationLoss is not null) Say($"step {report.Step}: validation loss {report.ValidationLoss:F3}");
            }
            else
            {
                var elapsed = clock.Elapsed;
                var remaining = TimeSpan.FromSeconds(elapsed.TotalSeconds / Math.Max(1, report.Step - FirstStep) * (steps - report.Step));
                Console.WriteLine($"step {report.Step,4}/{steps}  loss {report.TrainLoss:F3}{validation}  {report.TokensPerSecond,7:N0} tok/s  elapsed {elapsed:mm\\:ss}  eta {remaining:mm\\:ss}");
            }
        }

        /// <summary>Writes the train and validation curves to <see cref="PlotPath"/>.</summary>
        public void SavePlot()
        {
            var plot = new ScottPlot.Plot();
            var train = plot.Add.Scatter(Reports.Select(r => (double)r.Step).ToArray(), Reports.Select(r => r.TrainLoss).ToArray());
            train.LegendText = "train";
            train.MarkerSize = 0;
            var validated = Reports.Where(r => r.ValidationLoss is not null).Select(r => (Step: (double)r.Step, Loss: r.ValidationLoss!.Value)).ToList();
            if (InitialValidation is { } initial) validated.Insert(0, (FirstStep, initial));
            if (validated.Count > 0)
            {
                var validation = plot.Add.Scatter(validated.Select(v => v.Step).ToArray(), validated.Select(v => v.Loss).ToArray());
                validation.LegendText = "validation";
            }
            plot.Title("GPT training loss");
            plot.XLabel("step");
            plot.YLabel("cross-entropy (nats per token)");
            plot.ShowLegend();
            plot.SavePng(PlotPath, 800, 500);
        }

        /// <summary>This process's peak resident memory (VmHWM): a rank's own under MPI; under threads every rank shares the process's.</summary>
        public static long PeakResidentBytes()
        {
            try
            {
                var line = File.ReadLines("/proc/self/status").FirstOrDefault(l => l.StartsWith("VmHWM:", StringComparison.Ordinal));
                return line is null ? 0 : long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1]) * 1024;
            }
            catch (IOException)
            {
                return 0;
            }
        }

        public void Dispose() => metrics.Dispose();
    }
}
