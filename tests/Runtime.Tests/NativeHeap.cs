using System.Runtime.InteropServices;

namespace ModelParallel.Tests
{
    /// <summary>glibc's own account of the native heap (mallinfo2), for tests of how the runtime uses it. Linux only.</summary>
    internal static class NativeHeap
    {
        [StructLayout(LayoutKind.Sequential)]
        private struct MallocInfo
        {
            public nuint Arena, Ordblks, Smblks, Hblks, Hblkhd, Usmblks, Fsmblks, Uordblks, Fordblks, Keepcost;
        }

        [DllImport("libc")]
        private static extern MallocInfo mallinfo2();

        /// <summary>Bytes in blocks glibc mapped on their own (hblkhd).</summary>
        public static long MappedBytes => (long)mallinfo2().Hblkhd;

        /// <summary>Bytes glibc holds from the system: heaps (sbrk and thread arenas) and blocks mapped on their own.</summary>
        public static long HeldBytes
        {
            get
            {
                var info = mallinfo2();
                return (long)(info.Arena + info.Hblkhd);
            }
        }
    }
}
