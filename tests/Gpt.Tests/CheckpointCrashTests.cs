using System;
using System.Diagnostics;
using System.IO;
using System.Linq;
using ModelParallel.Checkpointing;
using Xunit;

namespace ModelParallel.Tests
{
    /// <summary>
    /// A save killed at any point (SIGKILL to the whole job, 20 times at different moments of a job that saves after
    /// every step) never leaves the committed checkpoint unreadable: <c>latest</c> always names a complete checkpoint
    /// whose every shard passes its checksum, and a half-written one is only ever a <c>.partial</c> directory.
    /// </summary>
    [Trait("Category", "Checkpoint")]
    public sealed class CheckpointCrashTests : IDisposable
    {
        private readonly string folder = Directory.CreateTempSubdirectory("checkpoint-crash-").FullName;

        public void Dispose() => Directory.Delete(folder, recursive: true);

        [Fact]
        public void AKilledSaveNeverBreaksTheLatestCheckpoint()
        {
            var corpus = GptProcess.WriteCorpus(folder);
            var checkpoints = Path.Combine(folder, "checkpoints");
            var random = new Random(7);
            int committed = 0, partial = 0;
            for (int trial = 0; trial < 20; trial++)
            {
                var arguments = $"\"{GptProcess.Dll}\" --steps 1000 --validate-every 1000 --width 32 --depth 2 --heads 4 --context 16 --batch 2 "
                    + $"--corpus \"{corpus}\" --cache \"{Path.Combine(folder, "cache")}\" --output \"{Path.Combine(folder, "out")}\" --checkpoint \"{checkpoints}\" --save-every 1"
                    + (File.Exists(Path.Combine(checkpoints, "latest")) ? " --resume" : "");
                var start = new ProcessStartInfo("dotnet", arguments) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
                using var process = Process.Start(start)!;
                _ = process.StandardError.ReadToEndAsync();
                // Wait for the first save of this job, then kill at a random moment of the saves that follow.
                string? line;
                while ((line = process.StandardOutput.ReadLine()) is not null && !line.Contains("checkpoint saved", StringComparison.Ordinal)) { }
                Assert.True(line is not null, $"trial {trial}: the job ended before saving");
                _ = process.StandardOutput.ReadToEndAsync();
                System.Threading.Thread.Sleep(random.Next(0, 400));
                process.Kill(entireProcessTree: true);
                process.WaitForExit();

                partial += Directory.GetDirectories(checkpoints, "*.partial").Length > 0 ? 1 : 0;
                var latest = File.ReadAllText(Path.Combine(checkpoints, "latest")).Trim();
                // The committed checkpoint loads: every shard read back and checked against its checksum.
                var state = Checkpoint.Consolidate(checkpoints);
                Assert.True(state.Count > 0, $"trial {trial}: {latest} holds no tensors");
                Assert.True(File.Exists(Path.Combine(checkpoints, latest, "manifest.json")), $"trial {trial}: latest names {latest}, which has no manifest");
                committed++;
            }
            Assert.Equal(20, committed);
            Assert.True(partial > 0, "no kill landed in the middle of a save, so the test proved nothing about them");
        }
    }
}
