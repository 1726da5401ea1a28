using System;
using System.Diagnostics;
using System.IO;
using System.Linq;
using System.Text.Json;
using Xunit;

namespace ModelParallel.Tests
{
    /// <summary>The GPT job as a user starts it: redirected output, the metrics file, the loss plot and the sample, on threads and under mpiexec.</summary>
    [Trait("Category", "Gpt")]
    public sealed class GptJobTests : IDisposable
    {
        private readonly string folder = Directory.CreateTempSubdirectory("gpt-job-").FullName;

        public void Dispose() => Directory.Delete(folder, recursive: true);

        [Theory]
        [InlineData(false)]
        [InlineData(true)]
        public void AShortRunPrintsPlainLinesAndWritesMetricsAPlotAndASample(bool mpi)
        {
            var corpus = GptProcess.WriteCorpus(folder);
            var output = Path.Combine(folder, "out");
            var arguments = $"\"{GptProcess.Dll}\" --steps 4 --validate-every 2 --width 32 --depth 2 --heads 4 --context 16 --batch 4 "
                + $"--corpus \"{corpus}\" --cache \"{Path.Combine(folder, "cache")}\" --output \"{output}\" --sample-tokens 5";
            // Under MPI the sample is drawn from the top 3 (the same seeded draw on every rank, the token broadcast from the last stage).
            var (exitCode, stdout, stderr) = mpi ? GptProcess.Run("mpiexec", "-n 4 dotnet " + arguments + " --top-k 3") : GptProcess.Run("dotnet", arguments);
            Assert.True(exitCode == 0, $"exit code {exitCode}\n{stdout}\n{stderr}");
            // Redirected: one plain line per step, no terminal control sequences.
            Assert.DoesNotContain("\u001b[", stdout);
            for (int step = 1; step <= 4; step++) Assert.Contains($"step {step,4}/4  loss ", stdout);
            Assert.Contains(mpi ? "on mesh dp=1 × pp=2 × tp=2 (4 MPI processes)" : "on mesh dp=1 × pp=2 × tp=2 (threads)", stdout);
            Assert.Contains("validation loss: initial ", stdout);
            Assert.Contains(mpi ? "sample (top-3): Gets the value of the" : "sample (greedy): Gets the value of the", stdout);
            Assert.Equal(1, stdout.Split('\n').Count(l => l.StartsWith("validation loss: initial", StringComparison.Ordinal))); // rank 0 only

            var lines = File.ReadAllLines(Path.Combine(output, "metrics.jsonl"));
            Assert.Equal(4, lines.Length);
            foreach (var (line, index) in lines.Select((l, i) => (l, i)))
            {
                using var record = JsonDocument.Parse(line);
                var root = record.RootElement;
                Assert.Equal(index + 1, root.GetProperty("step").GetInt32());
                Assert.InRange(root.GetProperty("train_loss").GetDouble(), 0.1, 20);
                Assert.True(root.GetProperty("tokens_per_second").GetDouble() > 0);
                Assert.True(root.GetProperty("model_flops_per_second").GetDouble() > 0);
                Assert.Equal(index % 2 == 1 ? JsonValueKind.Number : JsonValueKind.Null, root.GetProperty("validation_loss").ValueKind);
                Assert.Equal(4, root.GetProperty("rank_tensor_bytes").GetArrayLength());
                Assert.All(root.GetProperty("rank_peak_rss_bytes").EnumerateArray(), v => Assert.True(v.GetInt64() > 10_000_000));
            }
            using var png = SkiaSharp.SKBitmap.Decode(Path.Combine(output, "loss.png"));
            Assert.NotNull(png);
            Assert.Equal((800, 500), (png.Width, png.Height));
        }
    }
}
