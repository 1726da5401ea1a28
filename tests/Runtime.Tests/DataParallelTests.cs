using System.Collections.Generic;
using System.Linq;
using ModelParallel.Communication;
using ModelParallel.DataParallel;
using ModelParallel.Tests.Models;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace ModelParallel.Tests
{
    /// <summary>
    /// Data parallelism: each dp replica trains on its part of the batch; after gradient averaging, gradients
    /// and parameters equal one device trained on the whole batch.
    /// </summary>
    [Trait("Category", "Equivalence")]
    public sealed class DataParallelTests
    {
        private static readonly ModelShape Shape = new(Features: 8, Width: 16, Hidden: 32, Outputs: 4, Depth: 2, Bias: true);
        private const int Batch = 8;

        [Theory]
        [InlineData(2, 1, DataParallelGradients.DefaultBucketElements)]
        [InlineData(2, 2, DataParallelGradients.DefaultBucketElements)]
        [InlineData(2, 2, 300L)]
        [InlineData(4, 1, 1L)]
        public void ReplicasOnPartsOfTheBatchMatchOneDeviceOnTheWholeBatch(int dp, int tp, long bucketElements)
        {
            var batches = Batches();
            torch.manual_seed(21);
            var reference = new ReferenceModel(Shape);
            var logical = reference.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.detach().clone());
            var expected = TrainingRun.Train(reference, batches, m => m.named_parameters().ToDictionary(p => p.name, p => p.parameter.grad!.clone()),
                m => m.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.detach().clone()));

            var results = Ranks.Run(new MeshShape(dp: dp, tp: tp), context =>
            {
                var model = new TestModel(Shape);
                LogicalState.Load(model, logical);
                var gradients = DataParallelGradients.Attach(model, bucketElements);
                int part = Batch / dp, d = context.Coordinates.Dp;
                var local = batches.Select(b => (b.X.narrow(0, d * part, part), b.Y.narrow(0, d * part, part))).ToList();
                var outcome = TrainingRun.Train(model, local, LogicalState.ExportGradients, LogicalState.Export, gradients.Synchronize);
                return (Outcome: outcome, context.Coordinates.Dp);
            });

            var loss = results.Where(r => r.Outcome is not null).GroupBy(r => r.Dp).Select(g => g.First().Outcome.Loss).Aggregate((a, b) => a + b) / dp;
            TensorAssert.Close(expected.Loss, loss, $"dp={dp} tp={tp}: mean of the replicas' losses");
            foreach (var (result, rank) in results.Select((r, i) => (r, i)))
            {
                var what = $"dp={dp} tp={tp} bucket {bucketElements} rank {rank}";
                TensorAssert.Close(expected.Output.narrow(0, result.Dp * (Batch / dp), Batch / dp), result.Outcome.Output, $"{what}: output of its part of the batch");
                foreach (var (name, gradient) in expected.Gradients)
                    TensorAssert.Close(gradient, result.Outcome.Gradients[name], $"{what}: averaged gradient of {name}");
                foreach (var (name, parameter) in expected.Parameters)
                    TensorAssert.Close(parameter, result.Outcome.Parameters[name], $"{what}: {name} after 3 Adam steps");
            }
        }

        [Fact]
        public void BucketsAreReducedDuringBackwardOncePerStep()
        {
            var counts = Ranks.Run(new MeshShape(dp: 2, tp: 2), context =>
            {
                var counting = (CountingCommunicator)context.DataParallel;
                var model = new TestModel(Shape);
                var gradients = DataParallelGradients.Attach(model, bucketElements: 300);
                var optimizer = torch.optim.Adam(model.parameters());
                var started = new List<int>();
                for (int step = 0; step < 2; step++)
                {
                    // A forward without autograd (an evaluation) is no use to average: it must not hold the buckets back.
                    using (torch.no_grad()) model.forward(torch.ones(3, Shape.Features));
                    optimizer.zero_grad();
                    counting.Reset();
                    model.forward(torch.ones(3, Shape.Features)).sum().backward();
                    int duringBackward = counting.Calls(CollectiveKind.AllReduce);
                    gradients.Synchronize();
                    started.Add(duringBackward);
                    Assert.Equal(gradients.StartedDuringBackward, duringBackward);
                    // One per bucket, and one of the flags of uses outside the taps.
                    Assert.Equal(gradients.BucketCount + 1, counting.Calls(CollectiveKind.AllReduce));
                }
                return (gradients.BucketCount, started);
            }, new RunOptions { WrapCommunicator = (axis, c) => axis == MeshAxis.Data ? new CountingCommunicator(c) : c });

            foreach (var (buckets, started) in counts)
            {
                // Linear parameters are tapped, so their buckets start in backward; the LayerNorm bucket waits for Synchronize.
                Assert.True(buckets >= 3, $"{buckets} buckets");
                Assert.All(started, s => Assert.InRange(s, 1, buckets - 1));
                Assert.Equal(started[0], started[1]);
            }
        }

        private static List<(Tensor X, Tensor Y)> Batches()
        {
            using var generator = new torch.Generator(8);
            return Enumerable.Range(0, 3).Select(_ =>
                (torch.empty(Batch, Shape.Features).normal_(0, 1, generator), torch.empty(Batch, Shape.Outputs).normal_(0, 1, generator))).ToList();
        }
    }
}
