using System;
using System.Collections.Generic;
using System.Linq;
using ModelParallel.Communication;
using ModelParallel.Examples.Gpt.Model;
using ModelParallel.Layers;
using ModelParallel.Pipelining;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace ModelParallel.Tests
{
    /// <summary>What the partition costs per step, and what it refuses.</summary>
    [Trait("Category", "Gpt")]
    public sealed class GptPartitionTests
    {
        private static readonly RunOptions Counting = new()
        {
            WrapCommunicator = (axis, communicator) => axis == MeshAxis.Tensor ? new CountingCommunicator(communicator) : communicator,
        };

        /// <summary>
        /// Megatron's minimum: each block all-reduces twice in forward (after attention's and the MLP's RowParallel
        /// layers) and twice in backward (their ColumnParallel inputs' gradients). The embedding adds one (the looked-up
        /// rows), the head one in backward, the loss three small ones (max, sum of exp, target logit, each [tokens]);
        /// nothing is gathered or scattered: the logits stay sharded.
        /// </summary>
        [Theory]
        [InlineData(1)]
        [InlineData(2)]
        [InlineData(4)]
        public void AStepIssuesTheMinimumCollectivesAndNeverGathersTheLogits(int depth)
        {
            var config = new GptConfig(Vocabulary: 300, Width: 32, Depth: depth, Heads: 4, Context: 8);
            var counts = Ranks.Run(new MeshShape(tp: 2), context =>
            {
                var model = new GptModel(config, config.PaddedVocabulary(2));
                var executor = new PipelineExecutor(model, PipelineSchedule.Create("1f1b", 1, 1), new VocabParallelLoss(config.Vocabulary));
                var counter = (CountingCommunicator)context.TensorParallel;
                counter.Reset();
                var ids = torch.randint(config.Vocabulary, new long[] { 2, config.Context }, generator: new torch.Generator(3));
                executor.Step(ids, ids);
                return (AllReduce: counter.Calls(CollectiveKind.AllReduce), Total: counter.TotalCalls, Gathered: counter.Elements(CollectiveKind.AllGather));
            }, Counting);
            foreach (var count in counts)
            {
                Assert.Equal(4 * depth + 1 + 1 + 3, count.AllReduce);
                Assert.Equal(count.AllReduce, count.Total);
                Assert.Equal(0, count.Gathered);
            }
        }

        [Fact]
        public void APipelineLossForWholeOutputsIsRefusedForTheShardedLogits()
        {
            var config = new GptConfig(Vocabulary: 300, Width: 32, Depth: 2, Heads: 4, Context: 8);
            var error = Assert.Throws<RankFailedException>(() => Ranks.Run(new MeshShape(tp: 2), context =>
            {
                var model = new GptModel(config, config.PaddedVocabulary(2));
                var executor = new PipelineExecutor(model, PipelineSchedule.Create("1f1b", 1, 1), (y, t) => nn.functional.cross_entropy(y.reshape(-1, y.shape[^1]), t.reshape(-1)));
            }));
            var refusal = Assert.IsType<PartitionException>(error.InnerException);
            Assert.Contains("'ModelParallel.Examples.Gpt.Model.GptModel' returns its output sharded over tp (S(-1))", refusal.Message);
            Assert.Contains("pass a VocabParallelLoss", refusal.Message);
        }

        /// <summary>
        /// The padded model's loss and gradients equal the unpadded model's: padded logits never win and add nothing.
        /// The unpadded model is a separate model with the real vocabulary, holding the padded one's first rows.
        /// </summary>
        [Fact]
        public void ThePaddedModelsLossAndGradientsEqualTheUnpaddedModels()
        {
            var config = new GptConfig(Vocabulary: 300, Width: 32, Depth: 2, Heads: 4, Context: 8);
            torch.manual_seed(5);
            var padded = new GptModel(config, config.PaddedVocabulary(2));
            var unpadded = new GptModel(config, config.Vocabulary);
            using (torch.no_grad())
            {
                foreach (var (name, tensor) in unpadded.state_dict())
                    tensor.copy_(padded.state_dict()[name].narrow(0, 0, tensor.shape[0])); // embedding and head rows: the first 300
            }
            var ids = torch.randint(config.Vocabulary, new long[] { 3, config.Context + 1 }, generator: new torch.Generator(9));
            var (input, target) = (ids.narrow(1, 0, config.Context), ids.narrow(1, 1, config.Context));
            var paddedLoss = new VocabParallelLoss(config.Vocabulary).Compute(padded.forward(input), target);
            var plainLoss = nn.functional.cross_entropy(unpadded.forward(input).reshape(-1, config.Vocabulary), target.reshape(-1));
            paddedLoss.backward();
            plainLoss.backward();
            Assert.Equal(plainLoss.item<float>(), paddedLoss.item<float>(), 5);
            var paddedParameters = padded.named_parameters().ToDictionary(p => p.name, p => p.parameter);
            foreach (var (name, parameter) in unpadded.named_parameters())
            {
                var grad = paddedParameters[name].grad!;
                GptEquivalenceTests.Close(parameter.grad!, grad.narrow(0, 0, parameter.shape[0]), $"gradient of {name}");
                if (grad.shape[0] > parameter.shape[0]) // the padded rows of the embedding and the head learn nothing
                    Assert.Equal(0.0, grad.narrow(0, parameter.shape[0], grad.shape[0] - parameter.shape[0]).abs().max().item<float>());
            }
            // And padded logits never win: the argmax over a position's whole logits is a real id.
            var whole = new VocabParallelLoss(config.Vocabulary).Whole(padded.forward(input)[0, -1] + torch.arange(config.PaddedVocabulary(2)) * 1000);
            Assert.True(whole.argmax().item<long>() < config.Vocabulary);
        }

        /// <summary>
        /// A model built from scratch (no loaded weights) is one model: every replicated parameter, the positions
        /// embedding included, is the same on every tp and dp rank, and two runs build the same weights from the seed.
        /// </summary>
        [Fact]
        public void AFreshModelIsTheSameOnEveryReplicaAndInEveryRun()
        {
            var config = new GptConfig(Vocabulary: 300, Width: 32, Depth: 2, Heads: 4, Context: 8);
            var options = new ModelParallel.Examples.Gpt.Training.TrainingOptions(config, new MeshShape(dp: 2, tp: 2)) { Microbatches = 1, Batch = 2 };
            Dictionary<string, Tensor>[] Build() => Ranks.Run(options.Mesh, _ => LogicalState.Export(new ModelParallel.Examples.Gpt.Training.GptTraining(options).Model));
            var first = Build();
            var second = Build();
            foreach (var (name, tensor) in first[0])
            {
                for (int rank = 1; rank < first.Length; rank++)
                    Assert.True(tensor.equal(first[rank][name]).all().item<bool>(), $"{name} differs between rank 0 and rank {rank}");
                Assert.True(tensor.equal(second[0][name]).all().item<bool>(), $"{name} differs between two runs with the same seed");
            }
        }
    }
}
