using System;
using System.Runtime.InteropServices;
using System.Threading;

namespace ModelParallel
{
    /// <summary>
    /// glibc's allocator, set for a parallel run (<see cref="RunOptions.KeepFreedMemory"/>): no new arenas, no mapping of
    /// its own for a large block, and freed memory kept for the next step rather than handed back to the system. By
    /// default glibc maps each block over its threshold afresh and unmaps it when freed, and gives back the top of a
    /// heap, so a training step faults in the same pages every time (a GPT step at tp = 2 on threads: 730,000 faults in
    /// 9 steps). Set once per process, at the first parallel run; it cannot be undone, and the process then stays at its
    /// peak size. What it cannot reach: the arenas .NET's threads took before Main (7 of them at start-up here), which
    /// rank threads then share. Their heaps hold at most 64 MB, and glibc maps a larger block afresh there whatever the
    /// mapping limit says, so tensors over 64 MB still fault in every step on threads unless the process starts with
    /// MALLOC_ARENA_MAX=1 (the README's launch settings).
    /// </summary>
    internal static class AllocatorSettings
    {
        private const int M_TRIM_THRESHOLD = -1, M_MMAP_MAX = -4, M_ARENA_MAX = -8;
        private static int applied;

        [DllImport("libc", EntryPoint = "mallopt")]
        private static extern int MallocOption(int parameter, int value);

        public static void KeepFreedMemory()
        {
            if (!OperatingSystem.IsLinux() || Interlocked.Exchange(ref applied, 1) == 1) return;
            try
            {
                // Each call returns 1 when glibc took it; another C library (musl has a mallopt that does nothing) or a
                // refusal leaves the allocator as it was, which costs speed and nothing else.
                MallocOption(M_ARENA_MAX, 1); // limits arenas made from now on; threads keep the ones they have
                MallocOption(M_MMAP_MAX, 0);
                MallocOption(M_TRIM_THRESHOLD, int.MaxValue);
            }
            catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
            {
                // Not glibc: nothing to set.
            }
        }
    }
}
