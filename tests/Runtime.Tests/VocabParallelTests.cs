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
    /// Vocabulary parallelism: the embedding's rows and the head's outputs split over tp, cross-entropy over the sharded
    /// logits without gathering them. Against the plain model: loss, every gradient, parameters after 3 Adam steps.
    /// </summary>
    [Trait("Category", "Equivalence")]
    public sealed class VocabParallelTests
    {
        private const long Vocab = 12, Width = 8, Hidden = 16;

        [Theory]
        [InlineData(1, 0.0, false)]
        [InlineData(2, 0.0, false)]
        [InlineData(4, 0.0, false)]
        [InlineData(2, 0.1, false)]
        [InlineData(4, 0.1, false)]
        [InlineData(1, 0.0, true)]
        [InlineData(2, 0.0, true)]
        [InlineData(4, 0.1, true)]
        public void MatchesTheSingleDeviceModel(int tp, double labelSmoothing, bool tied)
        {
            torch.manual_seed(17);
            // Targets of -1 are ignored (ignore_index), a few per batch; with label smoothing the loss also reads every logit.
            // Tied: the head's weight is the embedding's, so its gradient sums the lookup's and the head's.
            var reference = new ReferenceLanguageModel(Vocab, Width, Hidden, labelSmoothing, ignoreIndex: -1, tied);
            var logical = reference.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.detach().clone());
            var batches = Enumerable.Range(0, 3).Select(_ =>
            {
                var targets = torch.randint(0, Vocab, new long[] { 3, 5 });
                targets[0, 1] = torch.tensor(-1L);
                targets[2, 4] = torch.tensor(-1L);
                return (torch.randint(0, Vocab, new long[] { 3, 5 }), targets);
            }).ToList();
            var (expectedLoss, expectedGradients, expectedState) = Train(reference, batches, m => m.named_parameters().ToDictionary(p => p.name, p => p.parameter.grad!.clone()),
                m => m.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.detach().clone()));

            var results = Ranks.Run(new MeshShape(tp: tp), context =>
            {
                var model = new TinyLanguageModel(Vocab, Width, Hidden, labelSmoothing, ignoreIndex: -1, tied);
                LogicalState.Load(model, logical);
                return Train(model, batches, LogicalState.ExportGradients, LogicalState.Export);
            });
            foreach (var (loss, gradients, state) in results)
            {
                TensorAssert.Close(expectedLoss, loss, $"tp={tp}, label smoothing {labelSmoothing}, tied {tied}: loss");
                TensorAssert.AllClose(expectedGradients, gradients, $"tp={tp}, label smoothing {labelSmoothing}: gradient of");
                TensorAssert.AllClose(expectedState, state, $"tp={tp}, label smoothing {labelSmoothing}: after 3 Adam steps,");
            }
        }

        [Theory]
        [InlineData(2, 1)]
        [InlineData(2, 2)]
        public void TiedReplicasOnPartsOfTheBatchMatchOneDevice(int dp, int tp)
        {
            torch.manual_seed(19);
            var reference = new ReferenceLanguageModel(Vocab, Width, Hidden, tied: true);
            var logical = reference.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.detach().clone());
            var batches = Enumerable.Range(0, 3).Select(_ => (torch.randint(0, Vocab, new long[] { 4, 5 }), torch.randint(0, Vocab, new long[] { 4, 5 }))).ToList();
            var (_, expectedGradients, expectedState) = Train(reference, batches, m => m.named_parameters().ToDictionary(p => p.name, p => p.parameter.grad!.clone()),
                m => m.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.detach().clone()));
            var results = Ranks.Run(new MeshShape(dp: dp, tp: tp), context =>
            {
                var model = new TinyLanguageModel(Vocab, Width, Hidden, tied: true);
                LogicalState.Load(model, logical);
                var averaging = DataParallel.DataParallelGradients.Attach(model);
                int part = 4 / dp, d = context.Coordinates.Dp;
                var local = batches.Select(b => (b.Item1.narrow(0, d * part, part), b.Item2.narrow(0, d * part, part))).ToList();
                return Train(model, local, LogicalState.ExportGradients, LogicalState.Export, averaging.Synchronize);
            });
            foreach (var (_, gradients, state) in results)
            {
                TensorAssert.AllClose(expectedGradients, gradients, $"dp={dp} tp={tp}, tied: gradient of");
                TensorAssert.AllClose(expectedState, state, $"dp={dp} tp={tp}, tied: after 3 Adam steps,");
            }
        }

        [Fact]
        public void TheLogitsAreNeverGathered()
        {
            var counts = Ranks.Run(new MeshShape(tp: 2), context =>
            {
                var counting = (CountingCommunicator)context.TensorParallel;
                var model = new TinyLanguageModel(Vocab, Width, Hidden);
                counting.Reset();
                model.forward(torch.zeros(3, 5, dtype: torch.int64), torch.ones(3, 5, dtype: torch.int64));
                return (counting.TotalCalls, counting.Calls(CollectiveKind.AllGather), counting.Calls(CollectiveKind.AllReduce));
            }, CountingRun.TensorParallel);
            // Forward: the embedding's g, the block's g, and max, sum-exp and target logit of the loss; no all-gather.
            Assert.All(counts, c => Assert.Equal((5, 0, 5), c));
        }

        private static (Tensor Loss, Dictionary<string, Tensor> Gradients, Dictionary<string, Tensor> State) Train<TModel>(TModel model, List<(Tensor Ids, Tensor Targets)> batches,
            System.Func<TModel, Dictionary<string, Tensor>> gradients, System.Func<TModel, Dictionary<string, Tensor>> state, System.Action? afterBackward = null)
            where TModel : nn.Module<Tensor, Tensor, Tensor>
        {
            var optimizer = torch.optim.Adam(model.parameters(), lr: 0.01);
            Tensor? first = null;
            Dictionary<string, Tensor>? firstGradients = null;
            foreach (var (ids, targets) in batches)
            {
                optimizer.zero_grad();
                var loss = model.forward(ids, targets);
                loss.backward();
                afterBackward?.Invoke();
                if (first is null)
                {
                    first = loss.detach().clone();
                    firstGradients = gradients(model);
                }
                optimizer.step();
            }
            return (first!, firstGradients!, state(model));
        }
    }
}
