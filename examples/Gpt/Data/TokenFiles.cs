using System;
using System.IO;
using System.IO.MemoryMappedFiles;

namespace ModelParallel.Examples.Gpt.Data
{
    /// <summary>The training and validation token files of a cache, memory-mapped (nothing is read until used).</summary>
    public sealed class TokenFiles : IDisposable
    {
        private TokenFiles(string directory, TokenStream train, TokenStream validation)
        {
            Directory = directory;
            Train = train;
            Validation = validation;
        }

        /// <summary>The cache directory.</summary>
        public string Directory { get; }

        public TokenStream Train { get; }

        public TokenStream Validation { get; }

        public static TokenFiles Open(string directory) =>
            new(directory, new TokenStream(Path.Combine(directory, TokenCache.Train)), new TokenStream(Path.Combine(directory, TokenCache.Validation)));

        public void Dispose()
        {
            Train.Dispose();
            Validation.Dispose();
        }
    }

    /// <summary>One flat file of 16-bit token ids.</summary>
    public sealed class TokenStream : IDisposable
    {
        private readonly MemoryMappedFile file;
        private readonly MemoryMappedViewAccessor view;

        public TokenStream(string path)
        {
            Length = new FileInfo(path).Length / sizeof(ushort);
            file = MemoryMappedFile.CreateFromFile(path, FileMode.Open, null, 0, MemoryMappedFileAccess.Read);
            view = file.CreateViewAccessor(0, 0, MemoryMappedFileAccess.Read);
        }

        /// <summary>Tokens in the file.</summary>
        public long Length { get; }

        /// <summary>The token at <paramref name="index"/>.</summary>
        public ushort this[long index] => view.ReadUInt16(index * sizeof(ushort));

        /// <summary>Copies <paramref name="into"/>.Length tokens from <paramref name="start"/>.</summary>
        public void Read(long start, Span<long> into)
        {
            if (start < 0 || start + into.Length > Length) throw new ArgumentOutOfRangeException(nameof(start), $"tokens [{start}, {start + into.Length}) are outside the file's {Length}.");
            for (int i = 0; i < into.Length; i++) into[i] = view.ReadUInt16((start + i) * sizeof(ushort));
        }

        public void Dispose()
        {
            view.Dispose();
            file.Dispose();
        }
    }
}
