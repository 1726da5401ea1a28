using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Reflection;
using System.Runtime.Loader;
using System.Text;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp.Syntax;
using ModelParallel.Autograd;
using TorchSharp;
using Xunit;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace ModelParallel.Generators.Tests.Soundness
{
    /// <summary>
    /// The differential fuzzer: random [ParallelModule] classes, each compiled with the generator and the analyzer.
    /// Every class is either refused (an error diagnostic), or fails loudly when run partitioned (one of our exceptions,
    /// naming the layer and the sizes; a libtorch shape error counts as a failure of the property), or equals one device
    /// at tp 2 and 4: output (gathered when forward returns it sharded), loss and
    /// every gathered gradient within relative 1e-5. A silent mismatch fails with the seed and the source.
    /// MODELPARALLEL_FUZZ_CASES sets how many (500 by default).
    /// </summary>
    [Trait("Category", "Soundness")]
    public sealed class SoundnessTests
    {
        private const int ChunkSize = 100;
        private readonly ITestOutputHelper output;

        public SoundnessTests(ITestOutputHelper output) => this.output = output;

        [Fact]
        public void EveryAcceptedRandomModelEqualsOneDeviceOrFailsLoudly()
        {
            int cases = int.TryParse(Environment.GetEnvironmentVariable("MODELPARALLEL_FUZZ_CASES"), out var n) ? n : 500;
            int rejected = 0, loud = 0, equal = 0;
            var silent = new List<string>();
            var loudReasons = new List<string>();
            for (int first = 0; first < cases; first += ChunkSize)
            {
                var modules = Enumerable.Range(first, Math.Min(ChunkSize, cases - first)).Select(RandomModule.Create).ToList();
                var (assembly, refusedNames, returned) = Compile(modules);
                foreach (var module in modules)
                {
                    if (refusedNames.Contains(module.Name))
                    {
                        rejected++;
                        continue;
                    }
                    var type = assembly.GetType($"Fuzz.{module.Name}")!;
                    switch (Check(type, returned[module.Name], int.Parse(module.Name["Case".Length..])))
                    {
                        case Outcome.Equal:
                            equal++;
                            if (Environment.GetEnvironmentVariable("MODELPARALLEL_FUZZ_SHOW_EQUAL") is { } pattern && module.Source.Contains(pattern)) output.WriteLine(module.Source);
                            break;
                        case Outcome.Loud(var why):
                            loud++;
                            loudReasons.Add(System.Text.RegularExpressions.Regex.Replace(why, @"Case\d+|\d+", "#"));
                            if (Environment.GetEnvironmentVariable("MODELPARALLEL_FUZZ_SHOW") is { } show && why.Contains(show)) output.WriteLine($"{why}\n{module.Source}");
                            break;
                        case Outcome.Silent(var why): silent.Add($"seed {module.Name["Case".Length..]}: {why}\n{module.Source}"); break;
                    }
                }
            }
            output.WriteLine($"{cases} random models: {rejected} refused at compile time, {loud} failed loudly at run time, {equal} equal to one device, {silent.Count} silently wrong");
            foreach (var reason in loudReasons.GroupBy(r => r).OrderByDescending(g => g.Count()).Take(6))
                output.WriteLine($"  loud, {reason.Count()}x: {reason.Key}");
            Assert.True(silent.Count == 0, $"{silent.Count} silently wrong model(s):\n{string.Join("\n", silent.Take(3))}");
            Assert.True(equal > cases / 10, $"only {equal} of {cases} models were accepted and run: the fuzzer tests too little");
        }

        private abstract record Outcome
        {
            public sealed record Equal : Outcome;

            public sealed record Loud(string Why) : Outcome;

            public sealed record Silent(string Why) : Outcome;
        }

        /// <summary>One device, then tp 2 and 4 from the same logical weights.</summary>
        private static Outcome Check(Type type, string returned, int seed)
        {
            nn.Module<Tensor, Tensor> Make() => (nn.Module<Tensor, Tensor>)Activator.CreateInstance(type)!;
            using var generator = new torch.Generator((ulong)seed + 1);
            var x = torch.empty(4, RandomModule.Features).normal_(0, 1, generator);
            torch.manual_seed(seed);
            var plain = Make();
            var logical = plain.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.detach().clone());
            var expected = plain.forward(x);
            var expectedLoss = expected.pow(2).mean();
            bool learns = expectedLoss.requires_grad; // a forward that ends on a path through no layer has nothing to train
            if (learns) expectedLoss.backward();
            var expectedGradients = plain.named_parameters().Where(p => p.parameter.grad is not null).ToDictionary(p => p.name, p => p.parameter.grad!.clone());
            int? shardDim = returned.StartsWith("S(", StringComparison.Ordinal) ? int.Parse(returned[2..^1]) : null;

            foreach (var tp in new[] { 2, 4 })
            {
                (Tensor Output, Tensor Loss, Dictionary<string, Tensor> Gradients)[] results;
                try
                {
                    results = Ranks.Run(new MeshShape(tp: tp), context =>
                    {
                        var model = Make();
                        LogicalState.Load(model, logical);
                        var local = model.forward(x);
                        // A sharded output is gathered, differentiably, to the logical one: the loss is then one device's.
                        var whole = shardDim is { } d ? TensorParallel.GatherFromTensorParallel(local.contiguous(), context.TensorParallel, d) : local;
                        var loss = whole.pow(2).mean();
                        if (learns) loss.backward();
                        return (whole.detach().clone(), loss.detach().clone(), LogicalState.ExportGradients(model));
                    });
                }
                catch (Exception e)
                {
                    var inner = e;
                    while (inner is RankFailedException or TargetInvocationException && inner.InnerException is { } cause) inner = cause;
                    var why = $"{inner.GetType().Name}: {inner.Message.Split('\n')[0]}";
                    // Loud is not enough: the failure must be one of ours, naming the layer or the collective, not libtorch's.
                    return inner is PartitionException or Communication.CollectiveMismatchException
                        ? new Outcome.Loud(why)
                        : new Outcome.Silent($"tp={tp}: failed with an error that names no layer: {why}");
                }
                foreach (var (actual, loss, gradients) in results)
                {
                    if (Differs(expected, actual) is { } outputWhy) return new Outcome.Silent($"tp={tp} output: {outputWhy}");
                    if (Differs(expectedLoss, loss) is { } lossWhy) return new Outcome.Silent($"tp={tp} loss: {lossWhy}");
                    foreach (var (name, gradient) in expectedGradients)
                    {
                        if (!gradients.TryGetValue(name, out var got)) return new Outcome.Silent($"tp={tp}: no gradient for {name}");
                        if (Differs(gradient, got) is { } why) return new Outcome.Silent($"tp={tp} gradient of {name}: {why}");
                    }
                }
            }
            return new Outcome.Equal();
        }

        private static string? Differs(Tensor expected, Tensor actual)
        {
            if (!expected.shape.SequenceEqual(actual.shape)) return $"shape [{string.Join(", ", actual.shape)}], expected [{string.Join(", ", expected.shape)}]";
            var e = expected.detach().to(torch.float64);
            var a = actual.detach().to(torch.float64);
            double scale = e.abs().max().item<double>(), difference = (e - a).abs().max().item<double>();
            return difference <= 1e-5 * Math.Max(scale, 1e-12) ? null : $"largest difference {difference:E3} against magnitude {scale:E3}";
        }

        /// <summary>Compiles the modules with the generator; the names the analyzer refused; what each forward returns.</summary>
        private static (Assembly Assembly, HashSet<string> Refused, Dictionary<string, string> Returned) Compile(List<RandomModule> modules)
        {
            var source = Samples.Usings + "namespace Fuzz\n{\n" + string.Join("\n", modules.Select(m => m.Source)) + "}\n";
            var compilation = GeneratorHarness.Compile(("Fuzz.cs", source));
            var tree = compilation.SyntaxTrees.Single();
            var refused = GeneratorHarness.Analyze(("Fuzz.cs", source))
                .Where(d => d.Severity == DiagnosticSeverity.Error)
                .Select(d => tree.GetRoot().FindNode(d.Location.SourceSpan).AncestorsAndSelf().OfType<ClassDeclarationSyntax>().First().Identifier.ValueText)
                .ToHashSet();
            var model = compilation.GetSemanticModel(tree);
            var returned = tree.GetRoot().DescendantNodes().OfType<ClassDeclarationSyntax>().ToDictionary(c => c.Identifier.ValueText, c =>
            {
                var symbol = (INamedTypeSymbol)model.GetDeclaredSymbol(c)!;
                var spec = ParallelModuleGenerator.Parser.Parse(symbol, compilation, default);
                var values = spec.Values.Where(v => v.IsReturn).Select(v => v.Placement.ToString()).Distinct().ToList();
                return values.Count == 1 ? values[0] : "R";
            });

            GeneratorHarness.Driver().RunGeneratorsAndUpdateCompilation(compilation, out var generated, out _);
            var errors = generated.GetDiagnostics().Where(d => d.Severity == DiagnosticSeverity.Error && !d.Id.StartsWith("MP", StringComparison.Ordinal)).ToList();
            Assert.True(errors.Count == 0, $"the fuzzer wrote code that does not compile: {string.Join("; ", errors.Take(3))}");
            using var image = new MemoryStream();
            var emit = generated.Emit(image);
            Assert.True(emit.Success, string.Join("; ", emit.Diagnostics.Where(d => d.Severity == DiagnosticSeverity.Error).Take(3)));
            image.Position = 0;
            var assembly = new AssemblyLoadContext("fuzz-" + Guid.NewGuid().ToString("N"), isCollectible: true).LoadFromStream(image);
            return (assembly, refused, returned);
        }
    }
}
