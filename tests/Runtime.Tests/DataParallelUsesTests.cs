using System;
using System.Collections.Generic;
using System.Linq;
using ModelParallel.DataParallel;
using ModelParallel.Tests.Models;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace ModelParallel.Tests
{
    /// <summary>
    /// Gradients that reach a parameter outside the layer forward that taps it (its weight read directly, a second forward
    /// before Synchronize) are averaged with the rest: every step's gradients equal one device on the whole batch.
    /// </summary>
    [Trait("Category", "Equivalence")]
    public sealed class DataParallelUsesTests
    {
        private const int Width = 8, Batch = 8, Steps = 3;

        [Theory]
        [InlineData(2)]
        [InlineData(4)]
        public void AWeightAlsoReadDirectlyIsAveragedWhole(int dp)
        {
            var batches = Batches(Width, Width);
            torch.manual_seed(5);
            var reference = new ReferenceMixedUseModel(Width);
            var logical = reference.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.detach().clone());
            var expected = EveryStep(reference, batches.Select(b => new[] { b }).ToList(), LocalGradients, null);

            var results = Ranks.Run(new MeshShape(dp: dp), context =>
            {
                var model = new MixedUseModel(Width);
                LogicalState.Load(model, logical);
                var averaging = DataParallelGradients.Attach(model);
                var local = Part(batches, dp, context.Coordinates.Dp);
                return (Steps: EveryStep(model, local, LocalGradients, averaging), averaging.BucketCount);
            });

            foreach (var (result, rank) in results.Select((r, i) => (r, i)))
                for (int step = 0; step < Steps; step++)
                    TensorAssert.AllClose(expected[step], result.Steps[step], $"dp={dp} rank {rank} step {step + 1}: gradient of");
        }

        [Fact]
        public void AWeightReadDirectlyOnOneReplicaOnlyIsAveragedOnBoth()
        {
            // Step 1: replica 0 reads the weight directly, replica 1 does not; step 2: neither; step 3: both. The replicas
            // must agree on the extra all-reduce, or the one that needs it would wait alone.
            bool[][] direct = { new[] { true, false }, new[] { false, false }, new[] { true, true } };
            var batches = Batches(Width, Width);
            torch.manual_seed(5);
            var reference = new ReferenceMixedUseModel(Width);
            var logical = reference.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.detach().clone());
            var optimizer = torch.optim.Adam(reference.parameters(), lr: 0.01);
            var expected = new List<Dictionary<string, Tensor>>();
            for (int step = 0; step < Steps; step++)
            {
                // One device: the whole batch's mean loss, each half through its replica's forward.
                optimizer.zero_grad();
                for (int d = 0; d < 2; d++)
                {
                    reference.ReadDirectly = direct[step][d];
                    var (x, y) = Part(batches, 2, d)[step][0];
#pragma warning disable MP0021 // whole-output models only
                    (nn.functional.mse_loss(reference.forward(x), y) / 2).backward();
#pragma warning restore MP0021
                }
                expected.Add(LocalGradients(reference));
                optimizer.step();
            }

            var results = Ranks.Run(new MeshShape(dp: 2), context =>
            {
                var model = new MixedUseModel(Width);
                LogicalState.Load(model, logical);
                var averaging = DataParallelGradients.Attach(model);
                var adam = torch.optim.Adam(model.parameters(), lr: 0.01);
                int d = context.Coordinates.Dp;
                var recorded = new List<Dictionary<string, Tensor>>();
                for (int step = 0; step < Steps; step++)
                {
                    model.ReadDirectly = direct[step][d];
                    adam.zero_grad();
                    var (x, y) = Part(batches, 2, d)[step][0];
#pragma warning disable MP0021 // whole-output models only
                    nn.functional.mse_loss(model.forward(x), y).backward();
#pragma warning restore MP0021
                    averaging.Synchronize();
                    recorded.Add(LocalGradients(model));
                    adam.step();
                }
                return recorded;
            });

            foreach (var (result, rank) in results.Select((r, i) => (r, i)))
                for (int step = 0; step < Steps; step++)
                    TensorAssert.AllClose(expected[step], result[step], $"rank {rank} step {step + 1}: gradient of");
        }

        [Theory]
        [InlineData(1, DataParallelGradients.DefaultBucketElements)]
        [InlineData(2, 300L)]
        public void TwoBackwardsBeforeOneSynchronizeMatchTheWholeBatch(int tp, long bucketElements)
        {
            var shape = new ModelShape(Features: 8, Width: 16, Hidden: 32, Outputs: 4, Depth: 2, Bias: true);
            var batches = Batches(shape.Features, shape.Outputs);
            torch.manual_seed(21);
            var reference = new ReferenceModel(shape);
            var logical = reference.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.detach().clone());
            // One device: both halves of each batch forward and backward, their gradients summed, then a step.
            var expected = EveryStep(reference, batches.Select(b => Halves(b)).ToList(), LocalGradients, null);

            var results = Ranks.Run(new MeshShape(dp: 2, tp: tp), context =>
            {
                var model = new TestModel(shape);
                LogicalState.Load(model, logical);
                var averaging = DataParallelGradients.Attach(model, bucketElements);
                // Each replica: its quarter of each half, two backwards, one Synchronize.
                var local = batches.Select(b => Halves(b).Select(h => Part(new List<(Tensor, Tensor)> { h }, 2, context.Coordinates.Dp)[0][0]).ToArray()).ToList();
                return EveryStep(model, local, m => LogicalState.ExportGradients(m), averaging);
            });

            foreach (var (result, rank) in results.Select((r, i) => (r, i)))
                for (int step = 0; step < Steps; step++)
                    TensorAssert.AllClose(expected[step], result[step], $"tp={tp} bucket {bucketElements} rank {rank} step {step + 1}: gradient of");
        }

        [Fact]
        public void AParameterNoReplicaUsedKeepsNoGradient()
        {
            // The branch is skipped in step 1 and taken after: on one device its parameters have no gradient in step 1, so
            // AdamW neither decays them nor counts the step; zeros instead would move them and shift Adam's bias correction.
            var batches = Batches(Width, Width);
            bool[] taken = { false, true, true };
            torch.manual_seed(7);
            var reference = new ReferenceBranchModel(Width);
            var logical = reference.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.detach().clone());
            var expected = Branching(reference, batches, taken, b => reference.TakeBranch = b, null);

            var results = Ranks.Run(new MeshShape(dp: 2), context =>
            {
                var model = new BranchModel(Width);
                LogicalState.Load(model, logical);
                var averaging = DataParallelGradients.Attach(model, bucketElements: 100);
                var local = Part(batches, 2, context.Coordinates.Dp).Select(s => s[0]).ToList();
                return Branching(model, local, taken, b => model.TakeBranch = b, averaging);
            });

            foreach (var (result, rank) in results.Select((r, i) => (r, i)))
            {
                Assert.True(result.FirstGradients.Keys.All(n => !n.StartsWith("branch")), $"rank {rank}: step 1 gave gradients to {string.Join(", ", result.FirstGradients.Keys)}");
                TensorAssert.AllClose(expected.FirstGradients, result.FirstGradients, $"rank {rank} step 1: gradient of");
                TensorAssert.AllClose(expected.Parameters, result.Parameters, $"rank {rank}: after 3 AdamW steps,");
            }
        }

        [Fact]
        public void AStepBeforeSynchronizeIsRefusedByName()
        {
            var error = Assert.Throws<RankFailedException>(() => Ranks.Run(new MeshShape(dp: 2), context =>
            {
                var model = new MixedUseModel(Width);
                DataParallelGradients.Attach(model);
                var optimizer = torch.optim.Adam(model.parameters());
#pragma warning disable MP0021 // a whole-output model
                model.forward(torch.ones(2, Width)).sum().backward();
#pragma warning restore MP0021
                optimizer.step(); // no Synchronize: .grad lacks the tapped gradients
            }));
            Assert.Contains("still in DataParallelGradients' buckets; call Synchronize()", error.Message);
            Assert.Contains("the gradient of 'up.weight'", error.Message);
        }

        [Fact]
        public void ZeroGradBetweenBackwardAndSynchronizeIsRefusedByName()
        {
            // On one device zero_grad discards the backward's gradients; here they wait in the buckets, out of its reach.
            foreach (bool module in new[] { false, true })
            {
                var error = Assert.Throws<RankFailedException>(() => Ranks.Run(new MeshShape(dp: 2), context =>
                {
                    var model = new MixedUseModel(Width);
                    DataParallelGradients.Attach(model);
                    var optimizer = torch.optim.Adam(model.parameters());
#pragma warning disable MP0021 // a whole-output model
                    model.forward(torch.ones(2, Width)).sum().backward();
#pragma warning restore MP0021
                    if (module) model.zero_grad();
                    else optimizer.zero_grad();
                }));
                Assert.Contains("zero_grad() at DataParallelUsesTests.cs(", error.Message);
                Assert.Contains("still in DataParallelGradients' buckets, where zeroing .grad cannot discard it; call Synchronize() before zero_grad()", error.Message);
            }
        }

        /// <summary>AdamW steps (weight decay 0.1), the branch taken as <paramref name="taken"/> says: step 1's gradients (those that exist) and the final parameters.</summary>
        private static (Dictionary<string, Tensor> FirstGradients, Dictionary<string, Tensor> Parameters) Branching(nn.Module<Tensor, Tensor> model,
            List<(Tensor X, Tensor Y)> batches, bool[] taken, Action<bool> take, DataParallelGradients? averaging)
        {
            var optimizer = torch.optim.AdamW(model.parameters(), lr: 0.01, weight_decay: 0.1);
            Dictionary<string, Tensor>? first = null;
            for (int step = 0; step < batches.Count; step++)
            {
                take(taken[step]);
                optimizer.zero_grad();
#pragma warning disable MP0021 // whole-output models only
                nn.functional.mse_loss(model.forward(batches[step].X), batches[step].Y).backward();
#pragma warning restore MP0021
                averaging?.Synchronize();
                first ??= model.named_parameters().Where(p => p.parameter.grad is not null).ToDictionary(p => p.name, p => p.parameter.grad!.clone());
                optimizer.step();
            }
            return (first!, model.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.detach().clone()));
        }

        /// <summary>
        /// Adam steps of mean-squared error, each over the given micro-batches' summed gradients (scaled by the replicas'
        /// share, so a replica's loss is its part of the whole batch's mean); every step's averaged gradients.
        /// </summary>
        private static List<Dictionary<string, Tensor>> EveryStep<TModel>(TModel model, List<(Tensor X, Tensor Y)[]> steps,
            Func<TModel, Dictionary<string, Tensor>> gradients, DataParallelGradients? averaging) where TModel : nn.Module<Tensor, Tensor>
        {
            var optimizer = torch.optim.Adam(model.parameters(), lr: 0.01);
            var recorded = new List<Dictionary<string, Tensor>>();
            foreach (var micro in steps)
            {
                optimizer.zero_grad();
                foreach (var (x, y) in micro)
                {
#pragma warning disable MP0021 // whole-output models only
                    nn.functional.mse_loss(model.forward(x), y).backward();
#pragma warning restore MP0021
                }
                averaging?.Synchronize();
                recorded.Add(gradients(model));
                optimizer.step();
            }
            return recorded;
        }

        private static Dictionary<string, Tensor> LocalGradients(nn.Module model) =>
            model.named_parameters().ToDictionary(p => p.name, p => p.parameter.grad!.clone());

        private static (Tensor X, Tensor Y)[] Halves((Tensor X, Tensor Y) b) =>
            new[] { (b.X.narrow(0, 0, Batch / 2), b.Y.narrow(0, 0, Batch / 2)), (b.X.narrow(0, Batch / 2, Batch / 2), b.Y.narrow(0, Batch / 2, Batch / 2)) };

        /// <summary>Replica <paramref name="d"/>'s rows of every batch, one micro-batch per step.</summary>
        private static List<(Tensor X, Tensor Y)[]> Part(List<(Tensor X, Tensor Y)> batches, int dp, int d)
        {
            long rows = batches[0].X.shape[0] / dp;
            return batches.Select(b => new[] { (b.X.narrow(0, d * rows, rows), b.Y.narrow(0, d * rows, rows)) }).ToList();
        }

        private static List<(Tensor X, Tensor Y)> Batches(long features, long outputs)
        {
            using var generator = new torch.Generator(8);
            return Enumerable.Range(0, Steps).Select(_ =>
                (torch.empty(Batch, features).normal_(0, 1, generator), torch.empty(Batch, outputs).normal_(0, 1, generator))).ToList();
        }
    }
}
