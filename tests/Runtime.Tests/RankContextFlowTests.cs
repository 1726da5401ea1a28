using System;
using System.Collections.Generic;
using System.Linq;
using System.Threading;
using System.Threading.Tasks;
using ModelParallel.Tests.Models;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace ModelParallel.Tests
{
    /// <summary>
    /// A rank's context reaches every place its body's code runs (await continuations, Task.Run, threads it starts), and a
    /// partitioned layer used where its own rank's context is not is an error naming the layer, never the single-device path.
    /// </summary>
    [Trait("Category", "Runtime")]
    public sealed class RankContextFlowTests
    {
        private static readonly ModelShape Shape = new(Features: 8, Width: 16, Hidden: 32, Outputs: 4, Depth: 2, Bias: true);

        [Fact]
        public void APartitionedModelTrainedAfterAwaitAndInTaskRunEqualsOneDevice()
        {
            var (batches, logical, expected) = Reference();
            var results = Ranks.Run(new MeshShape(tp: 2), async context =>
            {
                await Task.Yield(); // the rest of the body runs as a continuation, on a pool thread
                var model = await Task.Run(() =>
                {
                    var built = new TestModel(Shape);
                    LogicalState.Load(built, logical);
                    return built;
                });
                var outcome = await Task.Run(() => TrainingRun.Train(model, batches, LogicalState.ExportGradients, LogicalState.Export));
                return (outcome, Local: UpShape(model));
            });
            foreach (var ((actual, local), rank) in results.Select((r, i) => (r, i)))
            {
                Assert.Equal(new[] { Shape.Hidden / 2, Shape.Width }, local); // built as the tp shard, not the whole layer
                TensorAssert.SameTraining(expected, actual, $"tp=2 rank {rank}, trained inside Task.Run after await");
            }
        }

        [Fact]
        public void APartitionedModelTrainedOnAThreadTheBodyStartsEqualsOneDevice()
        {
            var (batches, logical, expected) = Reference();
            var results = Ranks.Run(new MeshShape(tp: 2), context =>
            {
                TrainingRun.Outcome? outcome = null;
                long[]? local = null;
                var worker = new Thread(() =>
                {
                    var model = new TestModel(Shape);
                    LogicalState.Load(model, logical);
                    local = UpShape(model);
                    outcome = TrainingRun.Train(model, batches, LogicalState.ExportGradients, LogicalState.Export);
                });
                worker.Start();
                worker.Join();
                return (Outcome: outcome!, Local: local!);
            });
            foreach (var ((actual, local), rank) in results.Select((r, i) => (r, i)))
            {
                Assert.Equal(new[] { Shape.Hidden / 2, Shape.Width }, local);
                TensorAssert.SameTraining(expected, actual, $"tp=2 rank {rank}, trained on a thread the body started");
            }
        }

        [Fact]
        public void APartitionedLayerCalledAfterItsRunEndedIsRefusedNamingIt()
        {
            var models = Ranks.Run(new MeshShape(tp: 2), _ => new TestModel(Shape));
            var error = Assert.Throws<PartitionException>(() => models[0].forward(torch.ones(3, Shape.Features)));
            Assert.Contains("Layer 'ModelParallel.Tests.Models.TestModel.input'", error.Message);
            Assert.Contains("built by rank 0", error.Message);
            Assert.Contains("outside that rank's context", error.Message);
        }

        [Fact]
        public void AVocabularyParallelEmbeddingCalledAfterItsRunEndedIsRefusedNamingIt()
        {
            var models = Ranks.Run(new MeshShape(tp: 2), _ => new TinyLanguageModel(vocab: 16, width: 8, hidden: 16));
            var ids = torch.zeros(new long[] { 2, 3 }, dtype: ScalarType.Int64);
            var error = Assert.Throws<PartitionException>(() => models[1].forward(ids, ids));
            Assert.Contains("Layer 'ModelParallel.Tests.Models.TinyLanguageModel.embed' was built by rank 1", error.Message);
        }

        [Fact]
        public void APartitionedLayerCalledByAnotherRankIsRefusedNamingBothRanks()
        {
            var models = new TestModel[2];
            var error = Assert.Throws<RankFailedException>(() => Ranks.Run(new MeshShape(tp: 2), context =>
            {
                models[context.Rank] = new TestModel(Shape);
                context.World.Barrier();
                models[1 - context.Rank].forward(torch.ones(3, Shape.Features));
            }));
            var inner = Assert.IsType<PartitionException>(error.InnerException);
            Assert.Matches(@"Layer 'ModelParallel\.Tests\.Models\.TestModel\.input' was built by rank [01] but is called by rank [01]", inner.Message);
        }

        [Fact]
        public void APartitionedLayerBuiltOutsideTheRunIsRefusedInsideIt()
        {
            var outside = new TestModel(Shape);
            var error = Assert.Throws<RankFailedException>(() => Ranks.Run(new MeshShape(tp: 2), _ => outside.forward(torch.ones(3, Shape.Features))));
            var inner = Assert.IsType<PartitionException>(error.InnerException);
            Assert.Contains("built outside Ranks.Run", inner.Message);
        }

        [Fact]
        public void AModelBuiltInARunOfOneRankIsThePlainModelAfterIt()
        {
            var models = Ranks.Run(new MeshShape(tp: 1), _ => new TestModel(Shape));
            Assert.Equal(new long[] { 3, Shape.Outputs }, models[0].forward(torch.ones(3, Shape.Features)).shape);
        }

        [Fact]
        public void ABodyReturningATaskThroughTheGenericOverloadIsRefused()
        {
            var error = Assert.Throws<ArgumentException>(() => Ranks.Run<Task>(new MeshShape(tp: 2), _ => Task.CompletedTask));
            Assert.Contains("Func<RankContext, Task>", error.Message);
        }

        [Fact]
        public void AnAsyncBodyIsWaitedForOnEveryRank()
        {
            int finished = 0;
            Ranks.Run(new MeshShape(tp: 2), async context =>
            {
                await Task.Delay(50);
                context.TensorParallel.AllReduce(torch.ones(2));
                Interlocked.Increment(ref finished);
            });
            Assert.Equal(2, finished);
        }

        private static long[] UpShape(TestModel model) =>
            model.named_parameters().Single(p => p.name == "blocks.0.up.weight").parameter.shape;

        private static (List<(Tensor X, Tensor Y)> Batches, Dictionary<string, Tensor> Logical, TrainingRun.Outcome Expected) Reference()
        {
            using var generator = new torch.Generator(42);
            var batches = Enumerable.Range(0, 3).Select(_ =>
                (torch.empty(7, Shape.Features).normal_(0, 1, generator), torch.empty(7, Shape.Outputs).normal_(0, 1, generator))).ToList();
            torch.manual_seed(17);
            var reference = new ReferenceModel(Shape);
            var logical = reference.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.detach().clone());
            var expected = TrainingRun.Train(reference, batches, gradients: m => m.named_parameters().ToDictionary(p => p.name, p => p.parameter.grad!.clone()),
                state: m => m.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.detach().clone()));
            return (batches, logical, expected);
        }
    }
}
