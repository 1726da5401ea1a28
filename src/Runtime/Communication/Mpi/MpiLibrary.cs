using System;
using System.Reflection;
using System.Runtime.InteropServices;

namespace ModelParallel.Communication.Mpi
{
    /// <summary>
    /// Points MPI.NET (built for MS-MPI: every import is "msmpi.dll") at an MPICH-ABI library: MPICH itself
    /// by default, or Intel MPI, Cray MPICH, MVAPICH through MODELPARALLEL_MPI_LIBRARY. Open MPI's ABI
    /// (pointer handles) is not compatible.
    /// </summary>
    internal static class MpiLibrary
    {
        public const string Variable = "MODELPARALLEL_MPI_LIBRARY";
        public const string Default = "libmpich.so.12";
        private static readonly object Gate = new();
        private static bool resolverSet;
        private static IntPtr handle;

        /// <summary>MPICH's MPI_STATUS_IGNORE.</summary>
        public static readonly IntPtr StatusIgnore = new(1);

        public static string Name => Environment.GetEnvironmentVariable(Variable) is { Length: > 0 } name ? name : Default;

        /// <summary>Installs the resolver and checks that the library loads; a one-line error naming the package otherwise.</summary>
        public static void Load()
        {
            lock (Gate)
            {
                if (!resolverSet)
                {
                    NativeLibrary.SetDllImportResolver(typeof(MPI.Environment).Assembly, Resolve);
                    resolverSet = true;
                }
            }
            if (!NativeLibrary.TryLoad(Name, out handle))
                throw new DllNotFoundException(
                    $"MPI library '{Name}' not found: install MPICH (apt-get install -y mpich libmpich-dev) or set {Variable} to an MPICH-ABI library.");
            ResolveExports();
        }

        /// <summary>
        /// MPI-3 calls MPI.NET (MPI-2) does not bind, resolved from the same library once, by <see cref="Load"/>:
        /// MPI_Iallreduce(sendbuf, recvbuf, count, datatype, op, comm, request*).
        /// </summary>
        public static unsafe delegate* unmanaged<IntPtr, IntPtr, int, int, int, int, int*, int> Iallreduce { get; private set; }

        /// <summary>MPI_Wait(request*, status*).</summary>
        public static unsafe delegate* unmanaged<int*, IntPtr, int> Wait { get; private set; }

        /// <summary>MPI_Isend(buf, count, datatype, dest, tag, comm, request*), for buffered sends.</summary>
        public static unsafe delegate* unmanaged<IntPtr, int, int, int, int, int, int*, int> Isend { get; private set; }

        /// <summary>MPI_Test(request*, flag*, status*).</summary>
        public static unsafe delegate* unmanaged<int*, int*, IntPtr, int> Test { get; private set; }

        /// <summary>MPI_Iallgather(sendbuf, sendcount, sendtype, recvbuf, recvcount, recvtype, comm, request*), for signatures.</summary>
        public static unsafe delegate* unmanaged<IntPtr, int, int, IntPtr, int, int, int, int*, int> Iallgather { get; private set; }

        /// <summary>MPI_Irecv(buf, count, datatype, source, tag, comm, request*): receives are polled, so the watchdog can end them.</summary>
        public static unsafe delegate* unmanaged<IntPtr, int, int, int, int, int, int*, int> Irecv { get; private set; }

        /// <summary>MPI_Iprobe(source, tag, comm, flag*, status*): whether a message is waiting, without receiving it.</summary>
        public static unsafe delegate* unmanaged<int, int, int, int*, IntPtr, int> Iprobe { get; private set; }

        /// <summary>MPI_Get_count(status*, datatype, count*).</summary>
        public static unsafe delegate* unmanaged<int*, int, int*, int> GetCount { get; private set; }

        /// <summary>MPI_Comm_set_errhandler(comm, errhandler).</summary>
        public static unsafe delegate* unmanaged<int, int, int> CommSetErrhandler { get; private set; }

        /// <summary>MPICH's MPI_Status: five ints (count_lo, count_hi_and_cancelled, MPI_SOURCE, MPI_TAG, MPI_ERROR).</summary>
        public const int StatusInts = 5;

        /// <summary>MPICH's MPI_ERRORS_RETURN: errors come back as codes (and become exceptions naming the call) instead of aborting in MPICH.</summary>
        public const int ErrorsReturn = 0x54000001;

        private static unsafe void ResolveExports()
        {
            Iallreduce = (delegate* unmanaged<IntPtr, IntPtr, int, int, int, int, int*, int>)NativeLibrary.GetExport(handle, "MPI_Iallreduce");
            Wait = (delegate* unmanaged<int*, IntPtr, int>)NativeLibrary.GetExport(handle, "MPI_Wait");
            Isend = (delegate* unmanaged<IntPtr, int, int, int, int, int, int*, int>)NativeLibrary.GetExport(handle, "MPI_Isend");
            Test = (delegate* unmanaged<int*, int*, IntPtr, int>)NativeLibrary.GetExport(handle, "MPI_Test");
            Iallgather = (delegate* unmanaged<IntPtr, int, int, IntPtr, int, int, int, int*, int>)NativeLibrary.GetExport(handle, "MPI_Iallgather");
            Irecv = (delegate* unmanaged<IntPtr, int, int, int, int, int, int*, int>)NativeLibrary.GetExport(handle, "MPI_Irecv");
            Iprobe = (delegate* unmanaged<int, int, int, int*, IntPtr, int>)NativeLibrary.GetExport(handle, "MPI_Iprobe");
            GetCount = (delegate* unmanaged<int*, int, int*, int>)NativeLibrary.GetExport(handle, "MPI_Get_count");
            CommSetErrhandler = (delegate* unmanaged<int, int, int>)NativeLibrary.GetExport(handle, "MPI_Comm_set_errhandler");
        }

        private static IntPtr Resolve(string name, Assembly assembly, DllImportSearchPath? path) =>
            name.StartsWith("msmpi", StringComparison.OrdinalIgnoreCase) ? NativeLibrary.Load(Name) : IntPtr.Zero;

        /// <summary>
        /// Throws when an MPI call did not return MPI_SUCCESS: "MPI_Allreduce on the tp communicator failed ...".
        /// The message is composed only on failure; a collective of 1K elements takes about a microsecond, and
        /// formatting a message on every call cost a tenth of that.
        /// </summary>
        public static void Check(int code, string call, string? communicator = null)
        {
            if (code != MPI.Unsafe.MPI_SUCCESS)
                throw new InvalidOperationException($"{call}{(communicator is null ? "" : $" on the {communicator}")} failed with MPI error code {code}.");
        }
    }
}
