using System;
using System.Text;

namespace ModelParallel
{
    /// <summary>
    /// What a rank prints about a failure. Under mpiexec every process writes to the same stderr pipe, and a line
    /// written by <c>Console.Error</c> can reach the pipe in several writes, so two ranks' lines interleave mid-line
    /// (seen: "…(mesh dp=ModelParallel: rank 1 of 2 …"). One write of at most PIPE_BUF (4096) bytes to a pipe is atomic.
    /// </summary>
    internal static class JobOutput
    {
        /// <summary>Writes <paramref name="line"/> and a newline to stderr in one write: atomic up to 4096 bytes, whole beyond.</summary>
        public static void ErrorLine(string line)
        {
            Console.Out.Flush();
            Console.Error.Flush();
            var bytes = Encoding.UTF8.GetBytes(line + "\n");
            using var stderr = Console.OpenStandardError();
            stderr.Write(bytes);
            stderr.Flush();
        }
    }
}
