using System;
using System.Diagnostics;
using System.IO;
using System.Linq;
using System.Reflection;
using System.Threading.Tasks;
using Xunit;

namespace ModelParallel.Tests
{
    /// <summary>
    /// A user's mistake on an example's command line is one line on stderr and exit code 2, found before any work (no
    /// single-device reference, no data), with no stack trace: on threads and under mpiexec alike.
    /// </summary>
    [Trait("Category", "Examples")]
    public sealed class CommandLineErrorTests
    {
        // --steps 200000 would make the data and the single-device reference take minutes: a mistake must be found first.
        [Theory]
        [InlineData("Mlp", "--tp 3 --steps 200000", "Layer 'ModelParallel.Examples.Mlp.MlpBlock.up' (ColumnParallel): out_features = 256 is not divisible by tp = 3 (mesh dp=1 × pp=1 × tp=3).")]
        [InlineData("Mlp", "--tp 0", "--tp must be at least 1; got 0.")]
        [InlineData("Mlp", "--tp abc", "Cannot parse argument 'abc' for option '--tp'")]
        [InlineData("Mlp", "--steps 0", "--steps must be at least 1; got 0.")]
        [InlineData("Mlp", "--width 0", "--width must be at least 1; got 0.")]
        [InlineData("Mlp", "--microbatches 0", "--microbatches must be at least 1; got 0.")]
        [InlineData("Mlp", "--schedule sideways", "Argument 'sideways' not recognized. Must be one of: 'gpipe' '1f1b' 'interleaved'")]
        [InlineData("Mlp", "--bogus", "Unrecognized command or argument '--bogus'.")]
        [InlineData("Mlp", "--pp 8 --steps 200000", "'ModelParallel.Examples.Mlp.ResidualMlp.blocks' has 4 blocks, fewer than the 8 pipeline stages")]
        [InlineData("Mlp", "--batch 30 --dp 4", "--batch 30 must be divisible by --dp 4")]
        [InlineData("Mlp", "--pp 2 --schedule interleaved --microbatches 3 --batch 30", "The interleaved schedule needs micro-batches (3) to be a multiple of pp (2).")]
        [InlineData("TransformerBlock", "--tp 3 --heads 3 --width 48 --steps 200000", "(ColumnParallel): out_features = 256 is not divisible by tp = 3 (mesh dp=1 × pp=1 × tp=3).")]
        [InlineData("TransformerBlock", "--tp 16", "--heads 8 must be divisible by --tp 16")]
        [InlineData("TransformerBlock", "--heads 6", "--width 64 must be divisible by --heads 6.")]
        [InlineData("TransformerBlock", "--steps -1", "--steps must be at least 1; got -1.")]
        [InlineData("Gpt", "--tp 3 --steps 200000", "--heads 4 must be divisible by --tp 3: each tp rank runs whole heads.")]
        [InlineData("Gpt", "--depth 3 --steps 200000", "--depth 3 must be divisible by --pp 2 × 1 chunk(s) per rank")]
        [InlineData("Gpt", "--schedule interleaved --depth 2", "--depth 2 gives fewer blocks than pipeline stages (--pp 2 × 2 chunk(s) per rank).")]
        [InlineData("Gpt", "--batch 6 --microbatches 4", "--batch 6 must be divisible by --microbatches 4.")]
        [InlineData("Gpt", "--lr -1", "--lr must be positive; got -1.")]
        [InlineData("Gpt", "--corpus /nonexistent/text", "--corpus /nonexistent/text: no such file or folder.")]
        [InlineData("Gpt", "--width 0", "--width must be at least 1; got 0.")]
        public void AMistakeIsOneLineAndExitCodeTwo(string example, string arguments, string expected)
        {
            var (exitCode, stdout, stderr) = Run("dotnet", $"\"{Dll(example)}\" {arguments}");
            AssertRefused(example, exitCode, stdout, stderr, expected);
        }

        [Fact]
        public void UnderMpiexecAMeshMistakeIsTheSameOneLineFromRankZero()
        {
            var (exitCode, stdout, stderr) = Run("mpiexec", $"-n 3 dotnet \"{Dll("Mlp")}\" --tp 3 --steps 200000");
            AssertRefused("Mlp", exitCode, stdout, stderr, "out_features = 256 is not divisible by tp = 3 (mesh dp=1 × pp=1 × tp=3).");
        }

        [Theory]
        [InlineData("Mlp")]
        [InlineData("TransformerBlock")]
        [InlineData("Gpt")]
        public void HelpListsTheOptionsAndSucceeds(string example)
        {
            var (exitCode, stdout, _) = Run("dotnet", $"\"{Dll(example)}\" --help");
            Assert.Equal(0, exitCode);
            Assert.Contains("--tp <tp>", stdout);
            Assert.Contains("--steps <steps>", stdout);
            Assert.Contains("[default: 2]", stdout);
        }

        private static void AssertRefused(string example, int exitCode, string stdout, string stderr, string expected)
        {
            var lines = stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries).Where(l => !l.StartsWith("yaksa:", StringComparison.Ordinal)).ToArray();
            Assert.True(exitCode == 2, $"exit code {exitCode}\nstdout:\n{stdout}\nstderr:\n{stderr}");
            Assert.True(lines.Length == 1, $"expected one line on stderr, got {lines.Length}:\n{stderr}");
            Assert.StartsWith($"{example}: ", lines[0]);
            Assert.Contains(expected, lines[0]);
            Assert.DoesNotContain("   at ", stderr);
            Assert.True(stdout.Trim().Length == 0, $"nothing should run before the mistake is found; stdout:\n{stdout}");
        }

        private static string Dll(string example)
        {
            var configuration = typeof(CommandLineErrorTests).Assembly.GetCustomAttributes<AssemblyMetadataAttribute>().Single(a => a.Key == "Configuration").Value;
            for (var directory = new DirectoryInfo(AppContext.BaseDirectory); directory is not null; directory = directory.Parent)
            {
                var dll = Path.Combine(directory.FullName, "examples", example, "bin", configuration!, "net10.0", example + ".dll");
                if (File.Exists(Path.Combine(directory.FullName, "Dsl.sln"))) return File.Exists(dll) ? dll : throw new FileNotFoundException($"Build the example first: {dll}");
            }
            throw new InvalidOperationException($"No Dsl.sln above {AppContext.BaseDirectory}.");
        }

        private static (int ExitCode, string Stdout, string Stderr) Run(string program, string arguments)
        {
            var start = new ProcessStartInfo(program, arguments) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
            using var process = Process.Start(start)!;
            var stdout = process.StandardOutput.ReadToEndAsync();
            var stderr = process.StandardError.ReadToEndAsync();
            if (!process.WaitForExit(TimeSpan.FromSeconds(60)))
            {
                process.Kill(entireProcessTree: true);
                throw new TimeoutException($"'{program} {arguments}' ran for 60 s: the mistake was not found before the work.");
            }
            Task.WaitAll(stdout, stderr);
            return (process.ExitCode, stdout.Result, stderr.Result);
        }
    }
}
