using System;
using System.Runtime.InteropServices;

namespace ModelParallel.Communication.Mpi
{
    /// <summary>
    /// Settings the MPI transport reads from the process environment when MPI starts, made for a .NET process.
    /// UCX (MPICH's ch4:ucx device, Debian's default) installs its own handlers for SIGSEGV, SIGILL and others; .NET
    /// turns a null dereference into a NullReferenceException through its SIGSEGV handler, so under UCX the exception
    /// became a UCX crash report and the rank died with no message of ours. <c>UCX_ERROR_SIGNALS=""</c> keeps UCX
    /// away from the signals. Set in the native environment (libc's setenv: .NET's own environment block is not what
    /// native code reads), before the MPI library is loaded (UCX reads it then), and only where the user has not set it.
    /// </summary>
    internal static class TransportSettings
    {
        public const string UcxErrorSignals = "UCX_ERROR_SIGNALS";

        [DllImport("libc", EntryPoint = "setenv", SetLastError = true)]
        private static extern int SetNative(string name, string value, int overwrite);

        public static void Apply()
        {
            if (!OperatingSystem.IsLinux() && !OperatingSystem.IsMacOS()) return;
            // overwrite = 0: a value the user chose (in the shell or through mpiexec -env) stays.
            if (SetNative(UcxErrorSignals, "", 0) != 0)
                throw new InvalidOperationException($"setenv({UcxErrorSignals}) failed with errno {Marshal.GetLastPInvokeError()}.");
        }
    }
}
