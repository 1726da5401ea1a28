using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Globalization;
using System.Linq;
using System.Reflection;

namespace ModelParallel.Benchmarks
{
    /// <summary>
    /// Runs one measurement of a benchmark as its own process and reads the "RESULT value" line it prints. The driver
    /// that calls this never loads libtorch, so nothing of it competes with the measured process: an earlier version of
    /// these benchmarks timed its MPI child from a parent that had just run libtorch itself, and the child was about
    /// 60 % slower than the same job started from a shell. Threads and MPI rows are started the same way, so they
    /// differ only in what they measure. Every child gets OPENBLAS_NUM_THREADS=1 and OMP_NUM_THREADS=1 (each rank sets
    /// one intra-op thread itself), and MALLOC_ARENA_MAX=1, the README's launch setting for threads (without it a rank
    /// thread maps every tensor over 64 MB afresh; PyTorch's and MPI's ranks are main threads, which it does not change).
    /// </summary>
    internal static class ChildProcess
    {
        private static readonly TimeSpan Limit = TimeSpan.FromMinutes(10);

        /// <summary>This benchmark's own dll, started again with <paramref name="arguments"/>, as one process (ranks as threads).</summary>
        public static double Threads(string arguments) => Run("dotnet", $"\"{Self}\" {arguments}");

        /// <summary>This benchmark's own dll under <c>mpiexec -n 2 -bind-to core</c>, as a user would start it.</summary>
        public static double Mpi(string arguments, int processes = 2) => Run("mpiexec", $"-n {processes} -bind-to core dotnet \"{Self}\" {arguments}");

        /// <summary>
        /// <paramref name="copies"/> copies of one measurement at once, each bound to its own CPU (<c>taskset</c>, as
        /// <c>-bind-to core</c> binds a rank), sharing nothing but the machine: the slowest copy's value. Against one copy
        /// alone, this is the most two ranks on this machine can scale by, whatever they run.
        /// </summary>
        public static double Together(string arguments, int copies = 2)
        {
            var runs = Enumerable.Range(0, copies)
                .Select(cpu => System.Threading.Tasks.Task.Run(() => Run("taskset", $"-c {cpu} dotnet \"{Self}\" {arguments}")))
                .ToArray();
            System.Threading.Tasks.Task.WaitAll(runs);
            return runs.Max(run => run.Result);
        }

        /// <summary>Any program; the value of its first "RESULT " line.</summary>
        public static double Run(string program, string arguments)
        {
            var start = new ProcessStartInfo(program, arguments) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
            start.Environment["OPENBLAS_NUM_THREADS"] = "1";
            start.Environment["OMP_NUM_THREADS"] = "1";
            start.Environment["MALLOC_ARENA_MAX"] = "1";
            using var process = Process.Start(start) ?? throw new InvalidOperationException($"could not start {program} (for mpiexec: apt-get install -y mpich libmpich-dev)");
            var error = process.StandardError.ReadToEndAsync();
            var output = process.StandardOutput.ReadToEndAsync();
            if (!process.WaitForExit(Limit))
            {
                process.Kill(entireProcessTree: true);
                throw new TimeoutException($"{program} {arguments} did not finish within {Limit.TotalMinutes} minutes");
            }
            var line = output.Result.Split('\n').FirstOrDefault(l => l.StartsWith("RESULT ", StringComparison.Ordinal))
                ?? throw new InvalidOperationException($"{program} {arguments} failed (exit {process.ExitCode}):\n{output.Result}{error.Result}");
            return double.Parse(line["RESULT ".Length..], CultureInfo.InvariantCulture);
        }

        /// <summary>
        /// Prints the slowest rank's measurement for the driver. Under mpiexec each process has only its own entry, so
        /// only rank 0 prints (its own); on threads every entry is there.
        /// </summary>
        public static int Report(IReadOnlyList<double> perRank)
        {
            if (perRank[0] > 0) Console.WriteLine(FormattableString.Invariant($"RESULT {perRank.Max()}"));
            return 0;
        }

        private static string Self => Assembly.GetEntryAssembly()!.Location;
    }
}
