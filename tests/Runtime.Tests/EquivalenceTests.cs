using System.Collections.Generic;
using System.Linq;
using ModelParallel.Communication;
using ModelParallel.Tests.Models;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace ModelParallel.Tests
{
    /// <summary>
    /// The partitioned model against the independent single-device <see cref="ReferenceModel"/>, from the same
    /// logical weights: forward output, loss, every gradient (gathered to logical shape) and the parameters
    /// after 3 Adam steps, within relative 1e-5.
    /// </summary>
    [Trait("Category", "Equivalence")]
    public sealed class EquivalenceTests
    {
        public static readonly TheoryData<int, int> Meshes = new()
        {
            { 1, 0 }, { 2, 0 }, { 4, 0 },
            { 1, 1 }, { 2, 1 }, { 4, 1 },
        };

        private static readonly ModelShape[] Shapes =
        {
            new(Features: 8, Width: 16, Hidden: 32, Outputs: 4, Depth: 2, Bias: true),
            new(Features: 6, Width: 12, Hidden: 24, Outputs: 3, Depth: 3, Bias: false),
        };

        private const int Steps = 3;

        [Theory]
        [MemberData(nameof(Meshes))]
        public void MatchesTheSingleDeviceModel(int tp, int shapeIndex)
        {
            var shape = Shapes[shapeIndex];
            var batches = Batches(shape);
            torch.manual_seed(11 + shapeIndex);
            var reference = new ReferenceModel(shape);
            var logical = reference.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.detach().clone());
            var expected = TrainingRun.Train(reference, batches, gradients: m => m.named_parameters().ToDictionary(p => p.name, p => p.parameter.grad!.clone()),
                state: m => m.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.detach().clone()));

            var results = Ranks.Run(new MeshShape(tp: tp), context =>
            {
                var model = new TestModel(shape);
                LogicalState.Load(model, logical);
                return TrainingRun.Train(model, batches, LogicalState.ExportGradients, LogicalState.Export);
            });

            foreach (var (actual, rank) in results.Select((r, i) => (r, i)))
                TensorAssert.SameTraining(expected, actual, $"tp={tp} rank {rank} {shape}, {Steps} steps");
        }

        [Theory]
        [InlineData(2)]
        [InlineData(4)]
        public void OneAllReduceForwardAndOneBackwardPerBlock(int tp)
        {
            var shape = Shapes[0];
            var counts = Ranks.Run(new MeshShape(tp: tp), context =>
            {
                var counting = (CountingCommunicator)context.TensorParallel;
                var model = new TestModel(shape);
                counting.Reset();
                var loss = model.forward(torch.ones(5, shape.Features)).sum();
                var forward = (counting.Calls(CollectiveKind.AllReduce), counting.TotalCalls, counting.Elements(CollectiveKind.AllReduce));
                counting.Reset();
                loss.backward();
                return (Forward: forward, Backward: (counting.Calls(CollectiveKind.AllReduce), counting.TotalCalls, counting.Elements(CollectiveKind.AllReduce)));
            }, CountingRun.TensorParallel);

            // Per block: g all-reduces the [batch, width] output of the row-parallel layer; f's backward
            // all-reduces the [batch, width] gradient of the column-parallel layer's input.
            long perBlock = 5 * shape.Width;
            foreach (var c in counts)
            {
                Assert.Equal((shape.Depth, shape.Depth, shape.Depth * perBlock), c.Forward);
                Assert.Equal((shape.Depth, shape.Depth, shape.Depth * perBlock), c.Backward);
            }
        }

        private static List<(Tensor X, Tensor Y)> Batches(ModelShape shape)
        {
            using var generator = new torch.Generator(42);
            return Enumerable.Range(0, Steps).Select(_ =>
                (torch.empty(7, shape.Features).normal_(0, 1, generator), torch.empty(7, shape.Outputs).normal_(0, 1, generator))).ToList();
        }
    }
}
