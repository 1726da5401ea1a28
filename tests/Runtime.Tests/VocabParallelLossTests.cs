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

        private static (torch.Tensor Logits, torch.Tensor Targets) Data()
        {
            using var generator = new torch.Generator(11);
            var logits = torch.randn(Tokens, Padded, generator: generator) * 3;
            var targets = torch.randint(Vocabulary, new[] { Tokens }, generator: generator);
            targets[2] = torch.tensor(-100L); // ignored
            targets[7] = torch.tensor(Vocabulary - 1); // the last real id, next to the padding
            return (logits, targets);
        }

        /// <summary>torch's cross-entropy over the real columns only, and its gradient (zero in the padded columns).</summary>
        private static (double Loss, float[] Gradient) Reference()
        {
            var (logits, targets) = Data();
            var real = logits.narrow(1, 0, Vocabulary).detach().requires_grad_(true);
            var loss = torch.nn.functional.cross_entropy(real, targets, ignore_index: -100);
            loss.backward();
            var gradient = torch.zeros(Tokens, Padded);
            gradient.narrow(1, 0, Vocabulary).copy_(real.grad!);
            return (loss.ToDouble(), gradient.data<float>().ToArray());
        }

        [Theory]
        [InlineData(0)] // outside a run
        [InlineData(1)]
        [InlineData(2)]
        [InlineData(4)]
        public void EqualsTorchsCrossEntropyOverTheRealVocabulary(int tp)
        {
            var (expectedLoss, expectedGradient) = Reference();
            (double, float[]) Run()
            {
                var (logits, targets) = Data();
                var context = RankContext.Current;
                long local = Padded / Math.Max(tp, 1);
                var shard = (context is null ? logits : logits.narrow(1, context.Coordinates.Tp * local, local)).detach().clone().requires_grad_(true);
                var loss = new VocabParallelLoss(Vocabulary).Compute(shard, targets);
                loss.backward();
                var full = torch.zeros(Tokens, Padded);
                var grad = shard.grad!;
                if (context is not null && tp > 1) grad = context.TensorParallel.AllGather(grad.contiguous(), 1);
                full.copy_(grad);
                return (loss.ToDouble(), full.data<float>().ToArray());
            }
            var results = tp == 0 ? new[] { Run() } : Ranks.Run(new MeshShape(tp: tp), _ => Run());
            foreach (var (loss, gradient) in results)
            {
                Assert.True(Math.Abs(loss - expectedLoss) <= 1e-6 * Math.Abs(expectedLoss), $"loss {loss} vs torch's {expectedLoss}");
                for (int i = 0; i < gradient.Length; i++)
                    Assert.True(Math.Abs(gradient[i] - expectedGradient[i]) <= 1e-6, $"gradient element {i} (token {i / Padded}, id {i % Padded}): {gradient[i]} vs {expectedGradient[i]}");
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
