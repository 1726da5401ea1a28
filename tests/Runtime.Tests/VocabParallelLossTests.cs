using System;
using System.Linq;
using ModelParallel.Layers;
using TorchSharp;
using Xunit;

namespace ModelParallel.Tests
{
    /// <summary>
    /// The fused vocabulary-parallel cross-entropy against torch's own cross_entropy over the whole, unpadded logits:
    /// loss and gradient, with a padded vocabulary and ignored targets, outside a run and at tp 1, 2 and 4.
    /// </summary>
    [Trait("Category", "Runtime")]
    public sealed class VocabParallelLossTests
    {
        private const long Vocabulary = 21, Padded = 24, Tokens = 10;

        private static (torch.Tensor Logits, torch.Tensor Targets) Data() => Data(Vocabulary, Padded, Tokens);

        private static (torch.Tensor Logits, torch.Tensor Targets) Data(long vocabulary, long padded, long tokens)
        {
            using var generator = new torch.Generator(11);
            var logits = torch.randn(tokens, padded, generator: generator) * 3;
            var targets = torch.randint(vocabulary, new[] { tokens }, generator: generator);
            targets[2] = torch.tensor(-100L); // ignored
            targets[7] = torch.tensor(vocabulary - 1); // the last real id, next to the padding
            return (logits, targets);
        }

        /// <summary>torch's cross-entropy over the real columns only, and its gradient (zero in the padded columns).</summary>
        private static (double Loss, float[] Gradient) Reference(long vocabulary, long padded, long tokens)
        {
            var (logits, targets) = Data(vocabulary, padded, tokens);
            var real = logits.narrow(1, 0, vocabulary).detach().requires_grad_(true);
            var loss = torch.nn.functional.cross_entropy(real, targets, ignore_index: -100);
            loss.backward();
            var gradient = torch.zeros(tokens, padded);
            gradient.narrow(1, 0, vocabulary).copy_(real.grad!);
            return (loss.ToDouble(), gradient.data<float>().ToArray());
        }

        [Theory]
        [InlineData(0, Vocabulary, Padded, Tokens)] // outside a run
        [InlineData(1, Vocabulary, Padded, Tokens)]
        [InlineData(2, Vocabulary, Padded, Tokens)]
        [InlineData(4, Vocabulary, Padded, Tokens)]
        [InlineData(4, 17, 24, Tokens)] // the last rank's columns are all padding
        // Rows of 1.2 MB: forward works through blocks of a few rows (3 at tp = 1, 6 at tp = 2), the last one short.
        [InlineData(0, 300_001, 300_004, 9)]
        [InlineData(2, 300_001, 300_004, 9)]
        public void EqualsTorchsCrossEntropyOverTheRealVocabulary(int tp, long vocabulary, long padded, long tokens)
        {
            var (expectedLoss, expectedGradient) = Reference(vocabulary, padded, tokens);
            (double, float[]) Run()
            {
                var (logits, targets) = Data(vocabulary, padded, tokens);
                var context = RankContext.Current;
                long local = padded / Math.Max(tp, 1);
                var shard = (context is null ? logits : logits.narrow(1, context.Coordinates.Tp * local, local)).detach().clone().requires_grad_(true);
                var loss = new VocabParallelLoss(vocabulary).Compute(shard, targets);
                loss.backward();
                var full = torch.zeros(tokens, padded);
                var grad = shard.grad!;
                if (context is not null && tp > 1) grad = context.TensorParallel.AllGather(grad.contiguous(), 1);
                full.copy_(grad);
                return (loss.ToDouble(), full.data<float>().ToArray());
            }
            var results = tp == 0 ? new[] { Run() } : Ranks.Run(new MeshShape(tp: tp), _ => Run());
            foreach (var (loss, gradient) in results)
            {
                Assert.True(Math.Abs(loss - expectedLoss) <= 1e-6 * Math.Abs(expectedLoss), $"loss {loss} vs torch's {expectedLoss}");
                double difference = 0, size = 0;
                for (int i = 0; i < gradient.Length; i++)
                {
                    Assert.True(Math.Abs(gradient[i] - expectedGradient[i]) <= 1e-6, $"gradient element {i} (token {i / padded}, id {i % padded}): {gradient[i]} vs {expectedGradient[i]}");
                    difference += Math.Abs(gradient[i] - expectedGradient[i]);
                    size += Math.Abs(expectedGradient[i]);
                }
                Assert.True(difference <= 1e-5 * size, $"gradient: L1 difference {difference:E3} from torch's, of L1 size {size:E3}");
            }
        }

        [Fact]
        public void TheCallersLogitsAreLeftAsTheyWere()
        {
            var (logits, targets) = Data();
            var before = logits.clone();
            var input = logits.requires_grad_(true);
            new VocabParallelLoss(Vocabulary).Compute(input, targets).backward();
            Assert.True(before.equal(logits.detach()).all().item<bool>(), "Compute overwrote the logits it was given");
        }

        [Fact]
        public void ASecondBackwardThroughOneLossGivesTheSameGradient()
        {
            var (logits, targets) = Data();
            var input = logits.requires_grad_(true);
            var loss = new VocabParallelLoss(Vocabulary).Compute(input, targets);
            loss.backward(retain_graph: true);
            var first = input.grad!.clone();
            input.grad!.zero_();
            loss.backward();
            Assert.True(first.equal(input.grad!).all().item<bool>(), "the second backward's gradient differs from the first");
        }
    }
}
