using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using Microsoft.ML.Tokenizers;
using ModelParallel.Examples.Gpt.Data;
using Xunit;

namespace ModelParallel.Tests
{
    /// <summary>The corpus, the tokenizer and the token cache.</summary>
    [Trait("Category", "Gpt")]
    public sealed class GptDataTests : IDisposable
    {
        private static readonly Tokenizer Tokenizer = TiktokenTokenizer.CreateForModel("gpt2");
        private readonly string folder = Directory.CreateTempSubdirectory("gpt-data-").FullName;

        public void Dispose() => Directory.Delete(folder, recursive: true);

        [Fact]
        public void TheSdkDocumentationIsFoundAndItsProseRoundTripsThroughTheTokenizer()
        {
            var corpus = Corpus.Open(null);
            Assert.True(corpus.Files.Count > 50, $"{corpus.Description}: {corpus.Files.Count} files");
            var documents = corpus.Documents(corpus.Files.First(f => f.EndsWith("System.Runtime.xml", StringComparison.Ordinal))).ToList();
            Assert.Contains(documents, d => d.Contains("Represents text as a sequence of UTF-16 code units.", StringComparison.Ordinal));
            documents = documents.Take(500).ToList();
            Assert.DoesNotContain(documents, d => d.Contains('<') && d.Contains("cref=", StringComparison.Ordinal)); // markup read as names
            foreach (var document in documents)
            {
                var ids = Tokenizer.EncodeToIds(document);
                Assert.All(ids, id => Assert.InRange(id, 0, (int)TokenCache.Gpt2Vocabulary - 1));
                Assert.Equal(document, Tokenizer.Decode(ids));
            }
        }

        [Fact]
        public void TheCacheIsReusedWhileTheCorpusIsUnchangedAndRebuiltWhenItChanges()
        {
            var text = Path.Combine(folder, "corpus");
            Directory.CreateDirectory(text);
            File.WriteAllText(Path.Combine(text, "a.txt"), Paragraphs(0, 200));
            var cache = Path.Combine(folder, "cache");
            var built = new List<string>();
            string first, second, third;
            using (var files = TokenCache.Open(Corpus.Open(text), Tokenizer, "gpt2", cache, built.Add)) first = files.Directory;
            using (var files = TokenCache.Open(Corpus.Open(text), Tokenizer, "gpt2", cache, built.Add)) second = files.Directory;
            Assert.Equal(first, second);
            Assert.Single(built); // the second open read the cache

            File.WriteAllText(Path.Combine(text, "a.txt"), Paragraphs(1000, 200) + "\n\nA paragraph that was not there before.");
            using (var files = TokenCache.Open(Corpus.Open(text), Tokenizer, "gpt2", cache, built.Add))
            {
                third = files.Directory;
                var all = Decode(files.Train).Concat(Decode(files.Validation)).ToList();
                Assert.Contains("A paragraph that was not there before.", all);
            }
            Assert.NotEqual(first, third);
            Assert.Equal(2, built.Count);
            using (var files = TokenCache.Open(Corpus.Open(text), Tokenizer, "gpt2", cache, built.Add)) { }
            Assert.Equal(2, built.Count);
            // A different tokenizer name is a different cache too.
            using (var files = TokenCache.Open(Corpus.Open(text), Tokenizer, "gpt2-other", cache, built.Add)) Assert.NotEqual(third, files.Directory);
        }

        [Fact]
        public void ValidationTextNeverAppearsInTrainingAndEveryDocumentIsOnItsSide()
        {
            var text = Path.Combine(folder, "split.txt");
            File.WriteAllText(text, Paragraphs(0, 600) + "\n\n" + Paragraphs(0, 600)); // every paragraph twice: duplicates stay together
            using var files = TokenCache.Open(Corpus.Open(text), Tokenizer, "gpt2", Path.Combine(folder, "cache"));
            var train = Decode(files.Train).ToList();
            var validation = Decode(files.Validation).ToList();
            Assert.InRange(validation.Count, 20, 120); // about 5 % of 1200 documents
            Assert.Empty(train.Intersect(validation));
            Assert.All(validation, d => Assert.True(TokenCache.IsValidation(d), d));
            Assert.All(train, d => Assert.False(TokenCache.IsValidation(d), d));
            Assert.Equal(1200, train.Count + validation.Count);
        }

        /// <summary>Distinct paragraphs of a few sentences each.</summary>
        private static string Paragraphs(int first, int count) => string.Join("\n\n", Enumerable.Range(first, count).Select(i =>
            $"Paragraph {i} says that the value {i * 7 % 13} is returned when the index {i} is valid.\nOtherwise it throws for {i % 5}."));

        /// <summary>The documents of a token file: the text between end-of-text tokens.</summary>
        private static IEnumerable<string> Decode(TokenStream tokens)
        {
            var ids = new List<int>();
            for (long i = 0; i < tokens.Length; i++)
            {
                int id = tokens[i];
                if (id != TokenCache.EndOfText)
                {
                    ids.Add(id);
                    continue;
                }
                yield return Tokenizer.Decode(ids);
                ids.Clear();
            }
        }
    }
}
