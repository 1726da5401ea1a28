using System;
using System.Threading;

namespace ModelParallel
{
    /// <summary>
    /// Some exceptions cannot be recovered from: one that escapes a callback from native code (a user's custom autograd
    /// function whose backward throws, inside TorchSharp's autograd engine) ends the process before any catch of ours
    /// runs. This handler at least says which rank failed and why, in one line, before the runtime ends the process;
    /// under MPI it then aborts the job (every process exits), instead of MPICH's "BAD TERMINATION" naming no rank.
    /// </summary>
    internal static class UnrecoverableFailures
    {
        private static int installed;

        public static void Install(Action? abortJob = null)
        {
            if (Interlocked.Exchange(ref installed, 1) == 1) return;
            AppDomain.CurrentDomain.UnhandledException += (_, e) =>
            {
                var rank = RankContext.Current;
                var error = e.ExceptionObject as Exception;
                var who = rank is null ? "a thread outside any rank" : $"rank {rank.Rank} of {rank.Mesh.World} ({rank.Mesh}, coordinates {rank.Coordinates})";
                JobOutput.ErrorLine(
                    $"ModelParallel: {who} failed where the process cannot recover (an exception escaped into native code, such as a custom autograd function's backward): {error?.GetType().Name}: {error?.Message}");
                abortJob?.Invoke();
            };
        }
    }
}
