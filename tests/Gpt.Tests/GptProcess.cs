using System;
using System.Diagnostics;
using System.IO;
using System.Linq;

namespace ModelParallel.Tests
{
    /// <summary>The GPT example as a process, as a user starts it, and the small corpus its job tests train on.</summary>
    internal static class GptProcess
    {
        /// <summary>The example's dll, copied beside the tests by the project reference.</summary>
        public static string Dll => Path.Combine(AppContext.BaseDirectory, "Gpt.dll");

        /// <summary>Runs <paramref name="program"/> to its end (at most 3 minutes) and returns what it printed.</summary>
        public static (int ExitCode, string Stdout, string Stderr) Run(string program, string arguments)
        {
            var start = new ProcessStartInfo(program, arguments) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
            using var process = Process.Start(start)!;
            var stdout = process.StandardOutput.ReadToEndAsync();
            var stderr = process.StandardError.ReadToEndAsync();
            if (!process.WaitForExit(TimeSpan.FromMinutes(3)))
            {
                process.Kill(entireProcessTree: true);
                throw new TimeoutException($"{program} {arguments} did not finish in 3 minutes");
            }
            return (process.ExitCode, stdout.Result, stderr.Result);
        }

        /// <summary>600 short distinct paragraphs: enough for both sides of the split at a context of 16.</summary>
        public static string WriteCorpus(string folder)
        {
            var corpus = Path.Combine(folder, "corpus.txt");
            if (!File.Exists(corpus))
                File.WriteAllText(corpus, string.Join("\n\n", Enumerable.Range(0, 600).Select(i => $"The method returns {i % 17} when the value {i} is set. It throws otherwise.")));
            return corpus;
        }
    }
}
