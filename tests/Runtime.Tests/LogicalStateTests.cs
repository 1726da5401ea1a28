using System;
using System.Linq;
using ModelParallel.Tests.Models;
using TorchSharp;
using Xunit;

namespace ModelParallel.Tests
{
    [Trait("Category", "Runtime")]
    public sealed class LogicalStateTests
    {
        private static readonly ModelShape Shape = new(4, 8, 16, 2, Depth: 2, Bias: true);

        [Fact]
        public void PlacementsComeFromTheGeneratedPlanWithFullNames()
        {
            var placements = LogicalState.Placements(new TestModel(Shape));
            Assert.Equal(Placement.Shard(0), placements["blocks.1.up.weight"].Placement);
            Assert.Equal(Placement.Shard(0), placements["blocks.1.up.bias"].Placement);
            Assert.Equal(Placement.Shard(1), placements["blocks.0.down.weight"].Placement);
            Assert.Equal(Placement.Replicate, placements["blocks.0.down.bias"].Placement);
            Assert.Equal(Placement.Replicate, placements["input.weight"].Placement);
        }

        [Fact]
        public void EachRankHoldsOnlyItsShardAndExportRestoresTheLogicalState()
        {
            var logical = new ReferenceModel(Shape).state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.detach().clone());
            var results = Ranks.Run(new MeshShape(tp: 2), context =>
            {
                var model = new TestModel(Shape);
                LogicalState.Load(model, logical);
                var local = model.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.clone());
                return (Local: local, Exported: LogicalState.Export(model));
            });
            for (int rank = 0; rank < 2; rank++)
            {
                var local = results[rank].Local;
                Assert.Equal(new long[] { 8, 8 }, local["blocks.0.up.weight"].shape);
                Assert.Equal(new long[] { 8 }, local["blocks.0.up.bias"].shape);
                Assert.Equal(new long[] { 8, 8 }, local["blocks.0.down.weight"].shape);
                Assert.Equal(new long[] { 8 }, local["blocks.0.down.bias"].shape);
                TensorAssert.Close(logical["blocks.0.up.weight"].narrow(0, 8 * rank, 8), local["blocks.0.up.weight"], "column shard", 0);
                TensorAssert.Close(logical["blocks.0.down.weight"].narrow(1, 8 * rank, 8), local["blocks.0.down.weight"], "row shard", 0);
                foreach (var (name, tensor) in logical) TensorAssert.Close(tensor, results[rank].Exported[name], $"export of {name}", 0);
            }
        }

        [Fact]
        public void LoadRejectsMissingUnexpectedAndMisshapenEntries()
        {
            var logical = new ReferenceModel(Shape).state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.detach().clone());
            var wrongKeys = logical.Where(kv => kv.Key != "head.bias").ToDictionary(kv => kv.Key, kv => kv.Value);
            wrongKeys["head.biass"] = logical["head.bias"];
            var keyError = Assert.Throws<ArgumentException>(() => LogicalState.Load(new TestModel(Shape), wrongKeys));
            Assert.Contains("missing [head.bias]", keyError.Message);
            Assert.Contains("unexpected [head.biass]", keyError.Message);

            var wrongShape = logical.ToDictionary(kv => kv.Key, kv => kv.Value);
            wrongShape["blocks.1.up.weight"] = torch.zeros(17, 8);
            var error = Assert.Throws<RankFailedException>(() => Ranks.Run(new MeshShape(tp: 2), _ => LogicalState.Load(new TestModel(Shape), wrongShape)));
            Assert.Contains("blocks.1.up.weight", error.InnerException!.Message);
            Assert.Contains("tp = 2", error.InnerException.Message);
        }

        [Fact]
        public void LoadRefusesAnotherDtypeNamingTheParameterAndChangesNothing()
        {
            var logical = new ReferenceModel(Shape).state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.detach().clone());
            logical["blocks.1.up.weight"] = torch.full(logical["blocks.1.up.weight"].shape, 3L);
            AssertRefusedAndUnchanged(logical, "Parameter 'blocks.1.up.weight': the logical tensor is Int64, the model's is Float32");
        }

        [Fact]
        public void LoadRefusesAMetaTensorOnTheLastKeyAndChangesNothing()
        {
            var logical = new ReferenceModel(Shape).state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.detach().clone());
            var last = new TestModel(Shape).state_dict().Keys.Last();
            logical[last] = torch.empty(logical[last].shape, device: torch.META);
            AssertRefusedAndUnchanged(logical, $"Parameter '{last}': the logical tensor is on the meta device");
        }

        /// <summary>Load throws naming the problem, and every parameter of the model is bitwise what it was before the call.</summary>
        private static void AssertRefusedAndUnchanged(System.Collections.Generic.Dictionary<string, torch.Tensor> logical, string expected)
        {
            var model = new TestModel(Shape);
            var before = model.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.clone());
            var error = Assert.Throws<ArgumentException>(() => LogicalState.Load(model, logical));
            Assert.Contains(expected, error.Message);
            foreach (var (name, tensor) in model.state_dict()) TensorAssert.Close(before[name], tensor, $"{name} after a refused load", 0);
        }

        [Fact]
        public void InitialisationIsDeterministicAndReplicatedLayersAgreeAcrossRanks()
        {
            Func<System.Collections.Generic.Dictionary<string, torch.Tensor>[]> run = () => Ranks.Run(new MeshShape(tp: 2), _ =>
                new TestModel(Shape).state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.clone()), new RunOptions { Seed = 99 });
            var first = run();
            var second = run();
            foreach (var (name, tensor) in first[0])
            {
                TensorAssert.Close(tensor, second[0][name], $"{name} on a second run", 0);
                if (!LogicalState.Placements(new TestModel(Shape)).TryGetValue(name, out var p) || p.Placement.Kind != PlacementKind.Shard)
                    TensorAssert.Close(tensor, first[1][name], $"replicated {name} on rank 1", 0);
            }
            Assert.True((first[0]["blocks.0.up.weight"] - first[1]["blocks.0.up.weight"]).abs().max().item<float>() > 0, "column shards of different ranks must differ");
        }
    }
}
