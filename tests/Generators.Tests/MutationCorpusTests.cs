using System;
using System.Collections.Generic;
using System.Linq;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Xunit;

namespace ModelParallel.Generators.Tests
{
    /// <summary>
    /// Robustness over a corpus of 270 malformed or unusual sources made by mutating valid models (the sample block,
    /// the pipelined sample, the transformer block example): the generator and the analyzer never throw, and each
    /// source gives either generated output or diagnostics (the analyzer's or the compiler's).
    /// </summary>
    [Trait("Category", "Generator")]
    public sealed class MutationCorpusTests
    {
        private const int PerSeed = 90;

        public static IEnumerable<object[]> Corpus() =>
            Enumerable.Range(0, 3).SelectMany(seed => Enumerable.Range(0, PerSeed).Select(i => new object[] { seed, i }));

        [Theory]
        [MemberData(nameof(Corpus))]
        public void MutatedSourcesGiveOutputOrDiagnosticsAndNeverAnException(int seed, int index)
        {
            var (name, text) = Mutate(seed, index);
            var sources = seed == 1 ? new[] { ("Block.cs", Samples.Block), (name, text) } : new[] { (name, text) };
            var (result, compilation) = GeneratorHarness.Run(sources);
            Assert.Null(result.Exception);
            Assert.DoesNotContain(result.Diagnostics, d => d.Id == "MP0099");
            var analyzer = GeneratorHarness.Analyze(sources);
            Assert.DoesNotContain(analyzer, d => d.Id == "AD0001");
            bool output = result.GeneratedSources.Length > 0;
            bool diagnostics = analyzer.Length > 0 || compilation.Any(d => d.Severity == DiagnosticSeverity.Error);
            Assert.True(output || diagnostics, $"mutation {seed}/{index} gave neither output nor diagnostics:\n{text}");
        }

        [Fact]
        public void TheCorpusHasAtLeast200DistinctSources()
        {
            var distinct = Corpus().Select(c => Mutate((int)c[0], (int)c[1]).Text).Distinct().Count();
            Assert.True(distinct >= 200, $"only {distinct} distinct mutated sources");
        }

        private static string Original(int seed) => seed switch
        {
            0 => Samples.Block,
            1 => Samples.Pipelined,
            _ => Transformer,
        };

        private static readonly string Transformer = new System.IO.StreamReader(
            typeof(MutationCorpusTests).Assembly.GetManifestResourceStream("TransformerBlock.cs")!).ReadToEnd();

        /// <summary>One deterministic mutation of a valid model: token edits, attribute swaps, removed keywords, truncation.</summary>
        private static (string Name, string Text) Mutate(int seed, int index)
        {
            var original = Original(seed);
            var random = new Random(seed * 1000 + index);
            var tokens = CSharpSyntaxTree.ParseText(original).GetRoot().DescendantTokens().ToList();
            var token = tokens[random.Next(tokens.Count)];
            string Replace(int start, int length, string with) => original.Substring(0, start) + with + original.Substring(start + length);
            string text = (index % 10) switch
            {
                0 => Replace(token.SpanStart, token.Span.Length, ""),                                    // drop a token
                1 => Replace(token.SpanStart, 0, token.Text + " "),                                      // duplicate a token
                2 => random.Next(2) == 0 ? ReplaceNth(original, "ColumnParallel", "RowParallel", random) : ReplaceNth(original, "RowParallel", "ColumnParallel", random), // change a placement
                3 => ReplaceNth(original, new[] { "partial ", "override ", "readonly ", "return " }[random.Next(4)], "", random), // drop a keyword
                4 => ReplaceNth(original, ".forward(", new[] { ".call(", ".forward(null!, ", ".forward(" }[random.Next(3)] + (random.Next(2) == 0 ? "" : "-"), random), // bypass or break a call
                5 => original.Substring(0, random.Next(original.Length)),                                // truncate
                6 => Replace(token.SpanStart, token.Span.Length, token.IsKind(SyntaxKind.NumericLiteralToken) ? "0" : "x"), // change a token
                7 => ReplaceNth(original, "nn.Linear(", new[] { "nn.LayerNorm(", "nn.Embedding(", "nn.Linear(1 + ", "Make(" }[random.Next(4)], random), // another layer or factory
                8 => ReplaceNth(original, "[", "[" + new[] { "Replicated", "FirstStage", "LastStage", "PipelineStages", "ColumnParallel", "RowParallel" }[random.Next(6)] + ", ", random), // an extra attribute
                _ => SwapLines(original, random),                                                        // reorder statements
            };
            if (index / 10 % 2 == 1)
            {
                // Every other group of ten: a second mutation on top, a token of the mutated text dropped.
                var again = CSharpSyntaxTree.ParseText(text).GetRoot().DescendantTokens().Where(t => t.Span.Length > 0).ToList();
                if (again.Count > 0)
                {
                    var drop = again[random.Next(again.Count)];
                    text = text.Substring(0, drop.SpanStart) + text.Substring(drop.Span.End);
                }
            }
            return ($"Mutant{seed}_{index}.cs", text);
        }

        private static string ReplaceNth(string text, string what, string with, Random random)
        {
            var positions = new List<int>();
            for (int i = text.IndexOf(what, StringComparison.Ordinal); i >= 0; i = text.IndexOf(what, i + 1, StringComparison.Ordinal)) positions.Add(i);
            if (positions.Count == 0) return text + "\n// unchanged\n";
            int at = positions[random.Next(positions.Count)];
            return text.Substring(0, at) + with + text.Substring(at + what.Length);
        }

        private static string SwapLines(string text, Random random)
        {
            var lines = text.Split('\n');
            int a = random.Next(lines.Length), b = random.Next(lines.Length);
            (lines[a], lines[b]) = (lines[b], lines[a]);
            return string.Join("\n", lines);
        }
    }
}
