using System;
using System.Collections.Generic;
using System.Linq;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using ModelParallel.Generators.Model;
using Xunit;

namespace ModelParallel.Generators.Tests
{
    /// <summary>
    /// The generator reuses a class's spec from an earlier compilation (SpecCache). Every spec it hands out must equal a
    /// fresh read of the same compilation; which classes were read again, not served by the cache, the parser's test seam
    /// tells. The edits
    /// include ones that change a class's spec from outside its file: a sub-module's forward body, a plain module's
    /// modifiers, a new type or namespace that shadows a name, another part of a partial class.
    /// </summary>
    [Trait("Category", "Incremental")]
    public sealed class SpecCacheTests
    {
        private const string Block = Samples.Usings + """
            namespace Sample
            {
                [ParallelModule]
                public sealed partial class Block : nn.Module<Tensor, Tensor>
                {
                    [ColumnParallel] private readonly Linear up = nn.Linear(8, 16);
                    [RowParallel] private readonly Linear down = nn.Linear(16, 8);
                    public Block() : base("Block") { RegisterComponents(); }
                    public override Tensor forward(Tensor x) => down.forward(nn.functional.relu(up.forward(x)));
                }
            }
            """;

        private const string Net = Samples.Usings + """
            namespace Sample
            {
                [ParallelModule]
                public sealed partial class Net : nn.Module<Tensor, Tensor>
                {
                    private readonly Block b0 = new(), b1 = new();
                    private readonly Helper helper = new();
                    public Net() : base("Net") { RegisterComponents(); }
                    public override Tensor forward(Tensor x) => b1.forward(helper.forward(b0.forward(x)));
                }
            }
            """;

        private const string Helper = Samples.Usings + """
            namespace Sample
            {
                public sealed class Helper : nn.Module<Tensor, Tensor>
                {
                    public Helper() : base("Helper") { }
                    public override Tensor forward(Tensor x) => x * 2;
                }
            }
            """;

        private const string Other = "namespace Sample { public static class Other { public static int Value => 1; } }";

        /// <summary>Each file's versions; null is "absent". The first version is the starting one.</summary>
        private static readonly (string Path, string?[] Versions)[] Files =
        {
            ("Block.cs", new[]
            {
                Block,
                Block.Replace("=> down.forward(nn.functional.relu(up.forward(x)));", "=> up.forward(x);"), // body: output S(-1)
                "// a comment outside any body\n" + Block,
            }),
            ("Net.cs", new[] { Net, Net.Replace("b1.forward(helper.forward(b0.forward(x)))", "helper.forward(b1.forward(b0.forward(x)))") }),
            ("Helper.cs", new[]
            {
                Helper, Helper.Replace("public sealed class Helper", "public class Helper"), Helper.Replace("x * 2", "x * 3"),
                Helper.Replace("public override Tensor forward(Tensor x) => x * 2;", "public override Tensor forward(Tensor x)\n{\n#nullable disable\nreturn x * 2;\n}"),
            }),
            ("Other.cs", new[] { Other, Other.Replace("=> 1", "=> 2") }),
            ("Inert.cs", new[] { null, "namespace Sample { public static class Unrelated { public static int Answer => 42; } }" }),
            ("Shadow.cs", new[] { null, "namespace Sample { public sealed class Linear { } }" }),
            ("Space.cs", new[] { null, "namespace Sample.nn { public static class Marker { } }" }),
            ("Part.cs", new[] { null, Samples.Usings + "namespace Sample { public sealed partial class Net { [ColumnParallel] private readonly Linear extra = nn.Linear(8, 8); } }" }),
            ("Extension.cs", new[] { null, Samples.Usings + "namespace Sample { public static class Twice { public static Tensor twice(this Tensor t) => t * 2; } }" }),
            ("GlobalUsing.cs", new[] { null, "global using System.Text;" }),
        };

        [Theory]
        [InlineData("Other.cs", 1)] // inside a body of a file nobody reads
        [InlineData("Inert.cs", 1)] // a new file whose type no file mentions
        [InlineData("Helper.cs", 2)] // inside Helper.forward: Net calls it but the walk does not read it
        public void AnEditThatCannotChangeASpecReusesEverySpec(string path, int version)
        {
            Assert.Empty(Edit(path, version).Read);
        }

        [Theory]
        [InlineData("Block.cs", 1)] // the body of Block.forward, which Net's walk reads
        [InlineData("Block.cs", 2)] // Block's file, which Net's walk reads
        [InlineData("Helper.cs", 1)] // Helper no longer sealed: Net's call must be checked at run time
        [InlineData("Helper.cs", 3)] // a directive inside a body: #nullable holds for the declarations after it
        [InlineData("Shadow.cs", 1)] // a new Sample.Linear: Block's fields are no longer torch layers
        [InlineData("Space.cs", 1)] // a new namespace Sample.nn: nn.Module no longer means torch's
        [InlineData("Part.cs", 1)] // another part of Net, with a layer
        [InlineData("Extension.cs", 1)] // extension methods: not proven harmless
        [InlineData("GlobalUsing.cs", 1)] // a global using: not proven harmless
        public void AnEditThatCanChangeNetsSpecReadsNetAgain(string path, int version)
        {
            Assert.Contains("Net", Edit(path, version).Read);
        }

        [Fact]
        public void TheEditsThatCanChangeASpecDoChangeIt()
        {
            // Guards the test above: were these edits harmless, a cache that reused Net's spec would pass unseen.
            foreach (var (path, version) in new[] { ("Block.cs", 1), ("Helper.cs", 1), ("Shadow.cs", 1), ("Space.cs", 1), ("Part.cs", 1) })
            {
                var (before, after, _) = Edit(path, version);
                Assert.True(!before["Net"].Equals(after["Net"]) || !before["Block"].Equals(after["Block"]), $"{path} version {version} changed no spec");
            }
        }

        [Fact]
        public void RandomEditsAlwaysGiveWhatAFreshReadGives()
        {
            const int Seed = 20261202, Steps = 80;
            var random = new Random(Seed);
            var versions = new int[Files.Length];
            var compilation = Compilation(versions);
            var driver = GeneratorHarness.Driver(trackSteps: true);
            Specs(ref driver, compilation);
            int reused = 0, read = 0;
            var history = new List<string>();
            for (int step = 0; step < Steps; step++)
            {
                int file = random.Next(Files.Length);
                versions[file] = (versions[file] + 1 + random.Next(Files[file].Versions.Length - 1)) % Files[file].Versions.Length;
                history.Add($"{Files[file].Path}#{versions[file]}");
                compilation = Apply(compilation, Files[file].Path, Files[file].Versions[versions[file]]);
                var reads = new List<string>();
                var cached = Specs(ref driver, compilation, reads);
                var fresh = FreshSpecs(compilation);
                Assert.True(fresh.Keys.OrderBy(k => k).SequenceEqual(cached.Keys.OrderBy(k => k)),
                    $"seed {Seed}, after {string.Join(", ", history)}: classes {string.Join(",", cached.Keys)} against a fresh read's {string.Join(",", fresh.Keys)}");
                foreach (var type in ModuleTypes(compilation)) // the analyzer's read, cached apart from the generator's
                    Assert.True(ParallelModuleGenerator.Parser.Parse(type, compilation, default, forDiagnostics: true, out _).Equals(ParallelModuleGenerator.Parser.ParseForDiagnostics(type, compilation, default)),
                        $"seed {Seed}, after {string.Join(", ", history)}: the analyzer's read of {type.Name} differs from a fresh read");
                foreach (var (name, spec) in cached)
                {
                    Assert.True(fresh[name].Equals(spec), $"seed {Seed}, after {string.Join(", ", history)}: {name}'s spec differs from a fresh read");
                    if (reads.Contains(name)) read++;
                    else reused++;
                }
            }
            Assert.True(reused > 0 && read > 0, $"{reused} specs reused and {read} read again: the run exercised only one path");
        }

        /// <summary>The specs before and after one edit of the starting files, through one driver, and the classes read again.</summary>
        private static (Dictionary<string, ModuleSpec> Before, Dictionary<string, ModuleSpec> After, List<string> Read) Edit(string path, int version)
        {
            var compilation = Compilation(new int[Files.Length]);
            var driver = GeneratorHarness.Driver(trackSteps: true);
            var first = new List<string>();
            var before = Specs(ref driver, compilation, first);
            Assert.Contains("Net", first); // the first run reads (this thread runs the transforms)
            var text = Files.Single(f => f.Path == path).Versions[version];
            var read = new List<string>();
            var after = Specs(ref driver, Apply(compilation, path, text), read);
            Assert.Equal(FreshSpecs(Apply(compilation, path, text)).OrderBy(p => p.Key), after.OrderBy(p => p.Key));
            return (before, after, read);
        }

        private static CSharpCompilation Compilation(int[] versions) =>
            GeneratorHarness.Compile(Files.Select((f, i) => (f.Path, f.Versions[versions[i]])).Where(f => f.Item2 is not null).Select(f => (f.Path, f.Item2!)).ToArray());

        private static CSharpCompilation Apply(CSharpCompilation compilation, string path, string? text)
        {
            var old = compilation.SyntaxTrees.FirstOrDefault(t => t.FilePath == path);
            var tree = text is null ? null : CSharpSyntaxTree.ParseText(text, GeneratorHarness.ParseOptions, path);
            return (old, tree) switch
            {
                (null, null) => compilation,
                (null, { } added) => compilation.AddSyntaxTrees(added),
                ({ } removed, null) => compilation.RemoveSyntaxTrees(removed),
                ({ } replaced, { } with) => compilation.ReplaceSyntaxTree(replaced, with),
            };
        }

        /// <summary>The specs the generator's pipeline produced for <paramref name="compilation"/>, by class name.</summary>
        private static Dictionary<string, ModuleSpec> Specs(ref GeneratorDriver driver, Compilation compilation, List<string>? reads = null)
        {
            ParallelModuleGenerator.Parser.ReadsOnThisThread = reads;
            try
            {
                driver = driver.RunGenerators(compilation);
            }
            finally
            {
                ParallelModuleGenerator.Parser.ReadsOnThisThread = null;
            }
            return driver.GetRunResult().Results.Single().TrackedSteps[TrackingNames.ParallelModules]
                .SelectMany(s => s.Outputs).Select(o => (ModuleSpec)o.Value).ToDictionary(s => s.Name);
        }

        /// <summary>A read of every [ParallelModule] class of <paramref name="compilation"/> that uses no cache.</summary>
        private static Dictionary<string, ModuleSpec> FreshSpecs(Compilation compilation) =>
            ModuleTypes(compilation).ToDictionary(type => type.Name, type => ParallelModuleGenerator.Parser.Parse(type, compilation, default, forDiagnostics: false, out _));

        private static IEnumerable<INamedTypeSymbol> ModuleTypes(Compilation compilation)
        {
            var attribute = compilation.GetTypeByMetadataName(ParallelModuleGenerator.ParallelModuleAttribute)!;
            return compilation.SyntaxTrees.SelectMany(t => t.GetRoot().DescendantNodes().OfType<Microsoft.CodeAnalysis.CSharp.Syntax.ClassDeclarationSyntax>()
                    .Select(c => compilation.GetSemanticModel(t).GetDeclaredSymbol(c)!)
                    .Where(type => type.GetAttributes().Any(a => SymbolEqualityComparer.Default.Equals(a.AttributeClass, attribute))))
                .Distinct(SymbolEqualityComparer.Default).Cast<INamedTypeSymbol>();
        }
    }
}
