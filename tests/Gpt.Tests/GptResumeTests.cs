using System;
using System.Diagnostics;
using System.IO;
using System.Linq;
using System.Text.Json;
using Xunit;

namespace ModelParallel.Tests
{
    /// <summary>
    /// From the command line: a GPT job saves checkpoints, dies, and is resumed on another mesh; the resumed steps' losses
    /// equal the uninterrupted run's within relative 1e-5 (same global batch, so the same batches).
    /// </summary>
    [Trait("Category", "Checkpoint")]
    public sealed class GptResumeTests : IDisposable
    {
        private const string Model = "--steps 6 --validate-every 6 --width 32 --depth 2 --heads 4 --context 16 --sample-tokens 0";
        private readonly string folder = Directory.CreateTempSubdirectory("gpt-resume-").FullName;

        public void Dispose() => Directory.Delete(folder, recursive: true);

        [Fact]
        public void AJobKilledAfterACheckpointResumesOnAnotherMeshWithTheSameLosses()
        {
            var uninterrupted = Losses(Job("dotnet", "--tp 2 --pp 2 --batch 4", "full"));
            // The job saves at step 3 and is killed (SIGKILL, the whole process) as soon as it says so.
            var checkpoints = Path.Combine(folder, "checkpoints");
            Kill("dotnet", $"--tp 2 --pp 2 --batch 4 --checkpoint \"{checkpoints}\" --save-every 3", "killed", "step 3: checkpoint saved");
            Assert.Equal("step-00000003", File.ReadAllText(Path.Combine(checkpoints, "latest")));
            // Resumed as 2 dp replicas of 2 sequences each: the same global batch of 4.
            var resumed = Job("dotnet", $"--tp 1 --pp 1 --dp 2 --batch 2 --checkpoint \"{checkpoints}\" --resume", "resumed");
            Assert.Contains("resumed at step 3 from", resumed.Stdout);
            Assert.Contains("(saved on mesh dp=1 × pp=2 × tp=2)", resumed.Stdout);
            var losses = Losses(resumed);
            Assert.Equal(new[] { 4, 5, 6 }, losses.Keys.ToArray());
            foreach (var (step, loss) in losses)
                Assert.True(Math.Abs(loss - uninterrupted[step]) <= 1e-5 * uninterrupted[step], $"step {step}: {loss} resumed, {uninterrupted[step]} uninterrupted");
        }

        [Fact]
        public void UnderMpiexecFourProcessesSaveAndTwoResume()
        {
            var uninterrupted = Losses(Job("dotnet", "--tp 2 --pp 2 --batch 4", "full"));
            var checkpoints = Path.Combine(folder, "checkpoints");
            Kill("mpiexec", $"--tp 2 --pp 2 --batch 4 --checkpoint \"{checkpoints}\" --save-every 3", "killed", "step 3: checkpoint saved", processes: 4);
            var resumed = Job("mpiexec", $"--tp 2 --pp 1 --batch 4 --checkpoint \"{checkpoints}\" --resume", "resumed", processes: 2);
            Assert.Contains("(2 MPI processes)", resumed.Stdout);
            foreach (var (step, loss) in Losses(resumed))
                Assert.True(Math.Abs(loss - uninterrupted[step]) <= 1e-5 * uninterrupted[step], $"step {step}: {loss} resumed under MPI, {uninterrupted[step]} uninterrupted");
        }

        [Fact]
        public void ResumingFromAFolderWithoutACheckpointIsOneLine()
        {
            var empty = Path.Combine(folder, "empty");
            Directory.CreateDirectory(empty);
            var job = GptProcess.Run("dotnet", Arguments($"--checkpoint \"{empty}\" --resume", "none"));
            Assert.Equal(2, job.ExitCode);
            Assert.Contains("is not a checkpoint: it has neither manifest.json nor a 'latest' pointer.", job.Stderr);
            Assert.DoesNotContain("   at ", job.Stderr);
        }

        private (int ExitCode, string Stdout, string Stderr) Job(string program, string mesh, string name, int processes = 0)
        {
            var job = GptProcess.Run(program, (program == "mpiexec" ? $"-n {processes} dotnet " : "") + Arguments(mesh, name));
            Assert.True(job.ExitCode == 0, $"exit code {job.ExitCode}\n{job.Stdout}\n{job.Stderr}");
            return job;
        }

        private string Arguments(string mesh, string name) =>
            $"\"{GptProcess.Dll}\" {Model} {mesh} --corpus \"{GptProcess.WriteCorpus(folder)}\" --cache \"{Path.Combine(folder, "cache")}\" --output \"{Path.Combine(folder, name)}\"";

        /// <summary>Step → train loss, from the job's metrics file.</summary>
        private System.Collections.Generic.Dictionary<int, double> Losses((int, string Stdout, string) job)
        {
            var line = job.Stdout.Split('\n').First(l => l.StartsWith("metrics: ", StringComparison.Ordinal));
            return File.ReadAllLines(line["metrics: ".Length..].Trim()).Select(l => JsonDocument.Parse(l).RootElement)
                .ToDictionary(r => r.GetProperty("step").GetInt32(), r => r.GetProperty("train_loss").GetDouble());
        }

        /// <summary>Starts the job and kills its whole process tree with SIGKILL when a line contains <paramref name="when"/>.</summary>
        private void Kill(string program, string mesh, string name, string when, int processes = 0)
        {
            var start = new ProcessStartInfo(program, (program == "mpiexec" ? $"-n {processes} dotnet " : "") + Arguments(mesh, name)) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
            using var process = Process.Start(start)!;
            _ = process.StandardError.ReadToEndAsync();
            var clock = Stopwatch.StartNew();
            string? line;
            while ((line = process.StandardOutput.ReadLine()) is not null && !line.Contains(when, StringComparison.Ordinal))
                Assert.True(clock.Elapsed < TimeSpan.FromMinutes(2), "the job never saved");
            Assert.NotNull(line);
            process.Kill(entireProcessTree: true);
            process.WaitForExit();
        }
    }
}
