using System;
using System.Diagnostics;
using System.IO;
using System.Threading.Tasks;

namespace ModelParallel.Tests
{
    /// <summary>Starts the Mpi host under <c>mpiexec -n N</c> and collects its exit code and output, with a hard time limit.</summary>
    internal static class MpiJob
    {
        public static readonly TimeSpan Limit = TimeSpan.FromSeconds(60);

        public sealed record Outcome(int ExitCode, string Output, TimeSpan Elapsed);

        public static Outcome Run(int processes, string scenario, string? environment = null)
        {
            var host = Path.Combine(AppContext.BaseDirectory, "ModelParallel.Mpi.Host.dll");
            // Hydra's -env passes a variable to every process: "-env NAME VALUE".
            var env = environment is null ? "" : $"-env {environment} ";
            return Start("mpiexec", $"-n {processes} {env}dotnet \"{host}\" {scenario}", $"mpiexec -n {processes} {scenario}");
        }

        /// <summary>The host as one process whose ranks are threads (no mpiexec).</summary>
        public static Outcome RunThreads(string scenario) =>
            Start("dotnet", $"\"{Path.Combine(AppContext.BaseDirectory, "ModelParallel.Mpi.Host.dll")}\" {scenario}", scenario);

        private static Outcome Start(string program, string arguments, string what)
        {
            var start = new ProcessStartInfo(program, arguments)
            {
                RedirectStandardOutput = true,
                RedirectStandardError = true,
                UseShellExecute = false,
            };
            var clock = Stopwatch.StartNew();
            using var process = Process.Start(start) ?? throw new InvalidOperationException("could not start mpiexec (install MPICH: apt-get install -y mpich libmpich-dev)");
            var stdout = process.StandardOutput.ReadToEndAsync();
            var stderr = process.StandardError.ReadToEndAsync();
            if (!process.WaitForExit(Limit))
            {
                process.Kill(entireProcessTree: true);
                throw new TimeoutException($"{what} did not finish within {Limit.TotalSeconds} s (a hang).");
            }
            Task.WaitAll(stdout, stderr);
            return new Outcome(process.ExitCode, stdout.Result + stderr.Result, clock.Elapsed);
        }
    }
}
