using System;
using System.IO;
using System.Linq;
using System.Reflection;
using System.Runtime.Loader;
using Microsoft.CodeAnalysis;
using Xunit;

namespace ModelParallel.Generators.Tests
{
    /// <summary>
    /// A model compiled without the generator (the package's analyzer missing, an old compiler) is refused by the runtime
    /// at the start of a run on more than one rank, naming the type and the cause, instead of training unsharded.
    /// </summary>
    [Trait("Category", "Runtime")]
    public sealed class MissingPartitionTests
    {
        private const string Model = """
            using System.Linq;
            using ModelParallel;
            using TorchSharp;
            using TorchSharp.Modules;
            using static TorchSharp.torch;

            namespace Unpartitioned
            {
                [ParallelModule]
                public sealed partial class Mlp : nn.Module<Tensor, Tensor>
                {
                    [ColumnParallel] private readonly Linear up;
                    [RowParallel] private readonly Linear down;

                    public Mlp() : base(nameof(Mlp))
                    {
                        up = nn.Linear(8, 32);
                        down = nn.Linear(32, 8);
                        RegisterComponents();
                    }

                    public override Tensor forward(Tensor x) => down.forward(up.forward(x));
                }

                public static class Job
                {
                    // The local shape of up.weight on rank 0.
                    public static long[] Run(int tp) => Ranks.Run(new MeshShape(tp: tp), _ =>
                    {
                        var model = new Mlp();
                        model.forward(torch.ones(2, 8));
                        return model.named_parameters().First().parameter.shape;
                    })[0];
                }
            }
            """;

        [Fact]
        public void AParallelModuleCompiledWithoutTheGeneratorFailsLoudlyAtTensorParallelTwo()
        {
            var job = Load(GeneratorHarness.Compile(("Mlp.cs", Model)));
            var error = Assert.IsType<PartitionException>(Assert.Throws<TargetInvocationException>(() => job.Invoke(null, new object[] { 2 })).InnerException);
            Assert.Contains("Type 'Unpartitioned.Mlp' is marked [ParallelModule] but has no generated partition", error.Message);
            Assert.Contains("the ModelParallel generator did not run on assembly", error.Message);
            Assert.Contains("mesh dp=1 × pp=1 × tp=2", error.Message);
        }

        [Fact]
        public void WithTheGeneratorTheSameSourceRunsSharded()
        {
            GeneratorHarness.Driver().RunGeneratorsAndUpdateCompilation(GeneratorHarness.Compile(("Mlp.cs", Model)), out var generated, out _);
            var job = Load(generated);
            Assert.Equal(new long[] { 16, 8 }, (long[])job.Invoke(null, new object[] { 2 })!);
        }

        [Fact]
        public void OnOneRankTheUnpartitionedModelIsThePlainModel()
        {
            var job = Load(GeneratorHarness.Compile(("Mlp.cs", Model)));
            Assert.Equal(new long[] { 32, 8 }, (long[])job.Invoke(null, new object[] { 1 })!);
        }

        [Fact]
        public void AShardingAttributeOutsideAParallelModuleIsRefused()
        {
            var source = Model.Replace("[ParallelModule]", "").Replace("public sealed partial class", "public sealed class");
            var job = Load(GeneratorHarness.Compile(("Mlp.cs", source)));
            var error = Assert.IsType<PartitionException>(Assert.Throws<TargetInvocationException>(() => job.Invoke(null, new object[] { 2 })).InnerException);
            Assert.Contains("Field 'Unpartitioned.Mlp.up' has a sharding attribute, but its class is not marked [ParallelModule]", error.Message);
        }

        /// <summary>Emits the compilation and returns its <c>Job.Run</c>; ModelParallel and TorchSharp resolve to the test's own copies.</summary>
        private static MethodInfo Load(Compilation compilation)
        {
            using var image = new MemoryStream();
            var emit = compilation.Emit(image);
            Assert.True(emit.Success, string.Join("\n", emit.Diagnostics.Where(d => d.Severity == DiagnosticSeverity.Error)));
            image.Position = 0;
            var assembly = new AssemblyLoadContext("unpartitioned-" + Guid.NewGuid().ToString("N"), isCollectible: true).LoadFromStream(image);
            return assembly.GetType("Unpartitioned.Job")!.GetMethod("Run")!;
        }
    }
}
