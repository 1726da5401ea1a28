using System;
using System.Runtime.InteropServices;
using Xunit;

namespace ModelParallel.Tests
{
    /// <summary>
    /// A parallel run keeps freed memory (RunOptions.KeepFreedMemory): glibc then serves a 40 MB block from a heap instead
    /// of a mapping of its own. 40 MB is over glibc's largest dynamic mapping threshold (32 MB), so without the setting
    /// such a block is always mapped, and the bytes in mappings (mallinfo2's hblkhd) would grow by it.
    /// </summary>
    public sealed class AllocatorSettingsTests
    {
        [Fact]
        public void AfterAParallelRunALargeBlockIsNotMappedOnItsOwn()
        {
            if (!OperatingSystem.IsLinux()) return; // glibc's setting; elsewhere the option does nothing
            Ranks.Run(new MeshShape(tp: 2), _ => { });
            const long bytes = 40L << 20;
            var before = NativeHeap.MappedBytes;
            var block = Marshal.AllocHGlobal((nint)bytes); // malloc on Unix
            var during = NativeHeap.MappedBytes;
            Marshal.FreeHGlobal(block);
            Assert.True(during < before + bytes, $"a 40 MB block was mapped on its own: bytes in mappings went from {before} to {during}");
        }
    }
}
