using System;
using System.IO;
using System.Runtime.InteropServices;

namespace ModelParallel.Checkpointing
{
    /// <summary>What makes a save durable on Linux: fsync of files and of the directories whose entries changed, and rename.</summary>
    internal static class DurableFiles
    {
        [DllImport("libc", SetLastError = true)]
        private static extern int open(string path, int flags);

        [DllImport("libc", SetLastError = true)]
        private static extern int fsync(int descriptor);

        [DllImport("libc")]
        private static extern int close(int descriptor);

        private const int ReadOnly = 0, Directory = 0x10000; // O_RDONLY, O_DIRECTORY (Linux)

        /// <summary>Flushes a directory's entries (new, renamed or removed files) to disk; a no-op off Linux.</summary>
        public static void SyncDirectory(string path)
        {
            if (!OperatingSystem.IsLinux()) return;
            int descriptor = open(path, ReadOnly | Directory);
            if (descriptor < 0) throw new IOException($"Cannot open directory {path} to flush it (errno {Marshal.GetLastWin32Error()}).");
            try
            {
                if (fsync(descriptor) != 0) throw new IOException($"fsync of directory {path} failed (errno {Marshal.GetLastWin32Error()}).");
            }
            finally
            {
                close(descriptor);
            }
        }

        /// <summary>Writes <paramref name="text"/> to <paramref name="path"/> through a temporary file, flushed, then renamed over it.</summary>
        public static void ReplaceText(string path, string text)
        {
            var temporary = path + ".tmp";
            using (var stream = new FileStream(temporary, FileMode.Create, FileAccess.Write))
            {
                stream.Write(System.Text.Encoding.UTF8.GetBytes(text));
                stream.Flush(flushToDisk: true);
            }
            File.Move(temporary, path, overwrite: true);
            SyncDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
        }
    }
}
