using System.Linq;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Xunit;

namespace ModelParallel.Generators.Tests
{
    /// <summary>
    /// The generator reads a compilation's classes in parallel when its concurrent build is on (the default) and one after
    /// another when it is off. Both must give the same sources and the same diagnostics, in the same order, however the
    /// threads interleave: parents that walk their sub-modules' forward share semantic models with those sub-modules' own
    /// reads on other threads. (The generator reports no partition diagnostics, the analyzer does; it compares its own.)
    /// </summary>
    [Trait("Category", "Incremental")]
    public sealed class ConcurrentReadTests
    {
        private const int Blocks = 16;

        [Fact]
        public void ParallelReadsGiveWhatOneThreadGives()
        {
            var sequential = Run(concurrent: false);
            Assert.Equal(2 * (Blocks + 1), sequential.Sources.Length); // each block and Net: its partition and its report
            Assert.DoesNotContain(sequential.Sources, s => s.StartsWith("Sample.Wrong")); // a class in error: the analyzer reports, nothing is emitted
            for (int round = 0; round < 5; round++)
            {
                var parallel = Run(concurrent: true);
                Assert.Equal(sequential.Sources, parallel.Sources);
                Assert.Equal(sequential.Diagnostics, parallel.Diagnostics);
            }
        }

        private static (string[] Sources, string[] Diagnostics) Run(bool concurrent)
        {
            var files = Enumerable.Range(0, Blocks).Select(i => ($"Block{i}.cs", Samples.Usings + $$"""
                namespace Sample
                {
                    [ParallelModule]
                    public sealed partial class Block{{i}} : nn.Module<Tensor, Tensor>
                    {
                        [ColumnParallel] private readonly Linear up = nn.Linear(8, 16);
                        [RowParallel] private readonly Linear down = nn.Linear(16, 8);
                        public Block{{i}}() : base("Block{{i}}") { RegisterComponents(); }
                        public override Tensor forward(Tensor x) => x + down.forward(nn.functional.gelu(up.forward(x)));
                    }
                }
                """)).Append(("Net.cs", Samples.Usings + $$"""
                namespace Sample
                {
                    [ParallelModule]
                    public sealed partial class Net : nn.Module<Tensor, Tensor>
                    {
                        {{string.Concat(Enumerable.Range(0, Blocks).Select(i => $"private readonly Block{i} b{i} = new();\n"))}}
                        public Net() : base("Net") { RegisterComponents(); }
                        public override Tensor forward(Tensor x)
                        {
                            {{string.Concat(Enumerable.Range(0, Blocks).Select(i => $"x = b{i}.forward(x);\n"))}}
                            return x;
                        }
                    }
                }
                """)).Append(("Wrong.cs", Samples.Usings + """
                namespace Sample
                {
                    [ParallelModule]
                    public sealed partial class Wrong : nn.Module<Tensor, Tensor>
                    {
                        [ColumnParallel] private readonly Linear up = nn.Linear(8, 16);
                        public Wrong() : base("Wrong") { RegisterComponents(); }
                        public override Tensor forward(Tensor x) => up.forward(x).sum(1);
                    }
                }
                """)).ToArray();
            var compilation = GeneratorHarness.Compile(files);
            compilation = compilation.WithOptions(compilation.Options.WithConcurrentBuild(concurrent));
            var result = GeneratorHarness.Driver().RunGenerators(compilation).GetRunResult().Results.Single();
            return (result.GeneratedSources.Select(s => $"{s.HintName}\n{s.SourceText}").ToArray(),
                    result.Diagnostics.Select(d => $"{d.Id} {d.GetMessage()} {d.Location.GetLineSpan()}").ToArray());
        }
    }
}
