using System;
using System.Collections.Generic;
using System.IO;
using System.IO.Hashing;
using System.Linq;
using System.Text;
using System.Text.Json;
using System.Threading.Tasks;
using Microsoft.ML.Tokenizers;

namespace ModelParallel.Examples.Gpt.Data
{
    /// <summary>
    /// The corpus tokenized once and kept on disk as two flat files of 16-bit token ids (GPT-2's 50257 ids fit), one
    /// for training and one for validation, read back through memory maps. The cache directory's name is a hash of
    /// the tokenizer, the split rule and every corpus file's path, size and modification time, so a changed corpus or
    /// tokenizer gets a new cache. Each document goes wholly to one side: validation when the XxHash32 of its text is
    /// 0 modulo 20 (about 5 %), so identical text never lands on both sides and the split does not depend on order.
    /// </summary>
    public static class TokenCache
    {
        /// <summary>Bumped whenever extraction, splitting or the file format changes: old caches are then not reused.</summary>
        private const int FormatVersion = 1;
        public const int ValidationModulus = 20;

        /// <summary>The cache for <paramref name="corpus"/> under <paramref name="root"/>, built first when it is missing.</summary>
        public static TokenFiles Open(Corpus corpus, Tokenizer tokenizer, string tokenizerName, string root, Action<string>? log = null)
        {
            var directory = Path.Combine(root, Key(corpus, tokenizerName));
            if (!File.Exists(Path.Combine(directory, Manifest)))
            {
                log?.Invoke($"tokenizing {corpus.Description} ({corpus.Files.Count} files) into {directory}");
                Build(corpus, tokenizer, directory);
            }
            return TokenFiles.Open(directory);
        }

        /// <summary>Whether a text goes to validation.</summary>
        public static bool IsValidation(string document) => XxHash32.HashToUInt32(Encoding.UTF8.GetBytes(document)) % ValidationModulus == 0;

        internal const string Manifest = "manifest.json", Train = "train.tokens", Validation = "validation.tokens";

        /// <summary>GPT-2's vocabulary: 50000 merges, 256 bytes and the end-of-text token.</summary>
        public const long Gpt2Vocabulary = 50257;

        /// <summary>The end-of-text token GPT-2 puts between documents.</summary>
        public const int EndOfText = 50256;

        private static string Key(Corpus corpus, string tokenizerName)
        {
            var hash = new XxHash64();
            hash.Append(Encoding.UTF8.GetBytes($"v{FormatVersion}|{tokenizerName}|{typeof(Tokenizer).Assembly.GetName().Version}|{ValidationModulus}"));
            foreach (var file in corpus.Files)
            {
                var info = new FileInfo(file);
                hash.Append(Encoding.UTF8.GetBytes($"|{info.FullName}|{info.Length}|{info.LastWriteTimeUtc.Ticks}"));
            }
            return Convert.ToHexString(hash.GetCurrentHash()).ToLowerInvariant();
        }

        private static void Build(Corpus corpus, Tokenizer tokenizer, string directory)
        {
            // Files are tokenized in parallel and written in file order, so the result does not depend on scheduling.
            var perFile = new (List<ushort> Train, List<ushort> Validation, int TrainDocuments, int ValidationDocuments)[corpus.Files.Count];
            Parallel.For(0, corpus.Files.Count, i =>
            {
                var train = new List<ushort>();
                var validation = new List<ushort>();
                int trainDocuments = 0, validationDocuments = 0;
                foreach (var document in corpus.Documents(corpus.Files[i]))
                {
                    bool held = IsValidation(document);
                    var into = held ? validation : train;
                    foreach (int id in tokenizer.EncodeToIds(document)) into.Add(checked((ushort)id));
                    into.Add(EndOfText);
                    if (held) validationDocuments++;
                    else trainDocuments++;
                }
                perFile[i] = (train, validation, trainDocuments, validationDocuments);
            });
            var temporary = directory + ".partial-" + Environment.ProcessId;
            Directory.CreateDirectory(temporary);
            long trainTokens = Write(Path.Combine(temporary, Train), perFile.Select(f => f.Train));
            long validationTokens = Write(Path.Combine(temporary, Validation), perFile.Select(f => f.Validation));
            if (trainTokens == 0 || validationTokens == 0)
                throw new UsageException($"The corpus ({corpus.Description}) gives {trainTokens} training and {validationTokens} validation tokens; it needs both (give more text with --corpus).");
            File.WriteAllText(Path.Combine(temporary, Manifest), JsonSerializer.Serialize(new
            {
                corpus = corpus.Description,
                files = corpus.Files.Count,
                tokenizer = tokenizer.GetType().Name,
                trainDocuments = perFile.Sum(f => f.TrainDocuments),
                validationDocuments = perFile.Sum(f => f.ValidationDocuments),
                trainTokens,
                validationTokens,
            }));
            // Complete or absent: another process may have built the same cache meanwhile; either copy is the same.
            try
            {
                Directory.Move(temporary, directory);
            }
            catch (IOException) when (File.Exists(Path.Combine(directory, Manifest)))
            {
                Directory.Delete(temporary, recursive: true);
            }
        }

        private static long Write(string path, IEnumerable<List<ushort>> parts)
        {
            long count = 0;
            using var stream = new FileStream(path, FileMode.CreateNew, FileAccess.Write);
            foreach (var part in parts)
            {
                var span = System.Runtime.InteropServices.CollectionsMarshal.AsSpan(part);
                stream.Write(System.Runtime.InteropServices.MemoryMarshal.AsBytes(span));
                count += part.Count;
            }
            stream.Flush(flushToDisk: true);
            return count;
        }
    }
}
