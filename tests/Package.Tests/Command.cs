using System;
using System.Collections;
using System.Diagnostics;
using System.IO;
using System.Threading.Tasks;

namespace ModelParallel.Tests
{
    /// <summary>Runs a command line program with a time limit and returns its exit code and output (stdout, then stderr).</summary>
    internal static class Command
    {
        public sealed record Outcome(int ExitCode, string Output)
        {
            public override string ToString() => $"exit code {ExitCode}\n{Output}";
        }

        public static Outcome Run(string program, string arguments, string directory, TimeSpan limit)
        {
            var start = new ProcessStartInfo(program, arguments)
            {
                WorkingDirectory = directory,
                RedirectStandardOutput = true,
                RedirectStandardError = true,
                UseShellExecute = false,
            };
            // A stranger's shell: none of the variables `dotnet test` sets for its own MSBuild nodes.
            foreach (DictionaryEntry variable in Environment.GetEnvironmentVariables())
            {
                var name = (string)variable.Key;
                if (name.StartsWith("MSBuild", StringComparison.OrdinalIgnoreCase) || name.StartsWith("VSTEST", StringComparison.OrdinalIgnoreCase)
                    || name == "DOTNET_HOST_PATH")
                    start.Environment.Remove(name);
            }
            start.Environment["DOTNET_NOLOGO"] = "1";
            start.Environment["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1";
            start.Environment["MSBUILDDISABLENODEREUSE"] = "1";
            using var process = Process.Start(start) ?? throw new InvalidOperationException($"could not start {program}");
            var stdout = process.StandardOutput.ReadToEndAsync();
            var stderr = process.StandardError.ReadToEndAsync();
            if (!process.WaitForExit(limit))
            {
                process.Kill(entireProcessTree: true);
                throw new TimeoutException($"'{program} {arguments}' in {directory} did not finish within {limit.TotalSeconds} s.");
            }
            Task.WaitAll(stdout, stderr);
            return new Outcome(process.ExitCode, stdout.Result + stderr.Result);
        }
    }
}
