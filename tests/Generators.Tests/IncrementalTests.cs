using System;
using System.Collections;
using System.Collections.Generic;
using System.Linq;
using System.Reflection;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Xunit;

namespace ModelParallel.Generators.Tests
{
    [Trait("Category", "Incremental")]
    public sealed class IncrementalTests
    {
        private const string Unrelated = "namespace Sample { public static class Other { public static int Value => 1; } }";

        [Fact]
        public void AnUnrelatedEditLeavesEveryTrackedStepCached()
        {
            var compilation = GeneratorHarness.Compile(("Block.cs", Samples.Block), ("Other.cs", Unrelated));
            var driver = GeneratorHarness.Driver(trackSteps: true).RunGenerators(compilation);

            var edited = compilation.ReplaceSyntaxTree(compilation.SyntaxTrees.Last(),
                CSharpSyntaxTree.ParseText(Unrelated.Replace("=> 1", "=> 2"), GeneratorHarness.ParseOptions, "Other.cs"));
            var result = driver.RunGenerators(edited).GetRunResult().Results.Single();

            var steps = result.TrackedSteps.Where(s => s.Key == TrackingNames.ParallelModules).SelectMany(s => s.Value).ToList();
            Assert.NotEmpty(steps);
            foreach (var output in steps.SelectMany(s => s.Outputs))
                Assert.True(output.Reason is IncrementalStepRunReason.Cached or IncrementalStepRunReason.Unchanged, $"step output was {output.Reason}");
            Assert.All(result.TrackedOutputSteps.SelectMany(s => s.Value).SelectMany(s => s.Outputs),
                o => Assert.Equal(IncrementalStepRunReason.Cached, o.Reason));
        }

        [Fact]
        public void AnEditToTheModelIsSeen()
        {
            var compilation = GeneratorHarness.Compile(("Block.cs", Samples.Block));
            var driver = GeneratorHarness.Driver(trackSteps: true).RunGenerators(compilation);
            var edited = compilation.ReplaceSyntaxTree(compilation.SyntaxTrees.Single(),
                CSharpSyntaxTree.ParseText(Samples.Block.Replace("[Replicated] private readonly Linear gate;", "[ColumnParallel] private readonly Linear gate;"), GeneratorHarness.ParseOptions, "Block.cs"));
            var result = driver.RunGenerators(edited).GetRunResult().Results.Single();
            var outputs = result.TrackedSteps[TrackingNames.ParallelModules].SelectMany(s => s.Outputs);
            Assert.Contains(outputs, o => o.Reason == IncrementalStepRunReason.Modified);
        }

        [Fact]
        public void ModelsHoldNoSymbolSyntaxCompilationOrLocation()
        {
            var compilation = GeneratorHarness.Compile(("Block.cs", Samples.Block), ("Bad.cs", Samples.Usings + """
                namespace Sample
                {
                    [ParallelModule]
                    public sealed partial class Bad : nn.Module<Tensor, Tensor>
                    {
                        [ColumnParallel] private readonly LayerNorm norm = nn.LayerNorm(4);
                        public Bad() : base("Bad") { RegisterComponents(); }
                        public override Tensor forward(Tensor x) => norm.forward(x);
                    }
                }
                """));
            var result = GeneratorHarness.Driver(trackSteps: true).RunGenerators(compilation).GetRunResult().Results.Single();
            var models = result.TrackedSteps[TrackingNames.ParallelModules].SelectMany(s => s.Outputs).Select(o => o.Value).ToList();
            Assert.Equal(2, models.Count);
            foreach (var model in models) Walk(model, "model", new HashSet<object>(ReferenceEqualityComparer.Instance));
        }

        private static readonly Type[] Forbidden = { typeof(ISymbol), typeof(SyntaxNode), typeof(Compilation), typeof(Location), typeof(SemanticModel), typeof(SyntaxTree) };

        private static void Walk(object? value, string path, HashSet<object> seen)
        {
            if (value is null || value is string || value.GetType().IsPrimitive || value.GetType().IsEnum) return;
            var type = value.GetType();
            Assert.False(Forbidden.Any(f => f.IsAssignableFrom(type)), $"{path} holds a {type.Name}");
            if (!type.IsValueType && !seen.Add(value)) return;
            if (value is IEnumerable items)
            {
                int i = 0;
                foreach (var item in items) Walk(item, $"{path}[{i++}]", seen);
                return;
            }
            foreach (var field in type.GetFields(BindingFlags.Instance | BindingFlags.Public | BindingFlags.NonPublic))
                Walk(field.GetValue(value), $"{path}.{field.Name}", seen);
        }
    }
}
