using System;
using System.Collections.Generic;
using System.Linq;
using ModelParallel.Communication;
using ModelParallel.Examples.Gpt.Model;
using ModelParallel.Examples.Gpt.Training;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace ModelParallel.Tests
{
    /// <summary>
    /// The GPT on a mesh equals the same class on one device, from the same logical weights, over 3 AdamW steps: the loss
    /// of every step, every gradient of the first step (gathered over tp, united over pp) and every parameter at the end.
    /// The reference is computed here without the runtime: plain forward, torch's cross-entropy over the real
    /// vocabulary's columns only (the padded columns cut away, not masked), a plain optimizer loop.
    /// </summary>
    [Trait("Category", "Gpt")]
    public sealed class GptEquivalenceTests
    {
        private const int Steps = 3;
        private const long Batch = 4;
        private static readonly GptConfig Config = new(Vocabulary: 300, Width: 32, Depth: 4, Heads: 4, Context: 8);
        private static readonly long Padded = GptConfig.PadVocabulary(Config.Vocabulary, 4); // 512, the same for every mesh here

        [Theory]
        [InlineData(1, 1, 2, "1f1b", 2)]
        [InlineData(1, 1, 4, "1f1b", 2)]
        [InlineData(1, 2, 1, "1f1b", 2)]
        [InlineData(1, 2, 1, "interleaved", 2)]
        [InlineData(2, 1, 1, "1f1b", 2)]
        [InlineData(2, 2, 2, "1f1b", 2)]
        public void TrainingOnTheMeshEqualsOneDevice(int dp, int pp, int tp, string schedule, int microbatches)
        {
            var (logical, data, expected) = Reference(dp);
            var options = new TrainingOptions(Config, new MeshShape(dp: dp, pp: pp, tp: tp))
            {
                Schedule = schedule, Microbatches = microbatches, Steps = Steps, Batch = Batch, BuiltVocabulary = Padded, WarmupSteps = 2,
            };
            var results = Ranks.Run(options.Mesh, context =>
            {
                var training = new GptTraining(options, logical);
                var losses = new List<double>();
                Dictionary<string, Tensor>? gradients = null;
                for (int step = 0; step < Steps; step++)
                {
                    var (input, target) = data[step];
                    int d = context.Coordinates.Dp;
                    losses.Add(training.Step(step, input.narrow(0, d * Batch, Batch), target.narrow(0, d * Batch, Batch)));
                    gradients ??= LogicalState.ExportGradients(training.Model);
                }
                return (Losses: losses, Gradients: gradients!, Parameters: LogicalState.Export(training.Model));
            }, new RunOptions { VirtualPipelineStages = options.VirtualStages });

            string where = $"dp={dp} pp={pp} tp={tp} {schedule} m={microbatches}";
            foreach (var (result, rank) in results.Select((r, i) => (r, i)))
                for (int step = 0; step < Steps; step++)
                    Assert.True(Math.Abs(result.Losses[step] - expected.Losses[step]) <= 1e-5 * Math.Abs(expected.Losses[step]),
                        $"{where} rank {rank} step {step}: loss {result.Losses[step]} vs {expected.Losses[step]} on one device");
            AllClose(expected.Gradients, Union(results.Select(r => r.Gradients), where), $"{where}: first-step gradient of");
            AllClose(expected.Parameters, Union(results.Select(r => r.Parameters), where), $"{where}: after {Steps} steps,");
        }

        private sealed record Expected(List<double> Losses, Dictionary<string, Tensor> Gradients, Dictionary<string, Tensor> Parameters);

        /// <summary>Logical weights, the batches of every step (dp × Batch rows), and one device's training on them.</summary>
        private static (Dictionary<string, Tensor>, List<(Tensor, Tensor)>, Expected) Reference(int dp)
        {
            torch.manual_seed(17);
            var model = new GptModel(Config, Padded);
            var logical = model.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.detach().clone());
            var generator = new torch.Generator(29);
            var data = Enumerable.Range(0, Steps).Select(_ =>
            {
                var tokens = torch.randint(Config.Vocabulary, new[] { dp * Batch, Config.Context + 1 }, generator: generator);
                return (tokens.narrow(1, 0, Config.Context).contiguous(), tokens.narrow(1, 1, Config.Context).contiguous());
            }).ToList();
            var options = new TrainingOptions(Config, new MeshShape()) { Steps = Steps, WarmupSteps = 2 };
            var optimizer = torch.optim.AdamW(model.parameters(), lr: options.LearningRate, beta1: 0.9, beta2: 0.95, weight_decay: 0.01);
            var losses = new List<double>();
            Dictionary<string, Tensor>? gradients = null;
            for (int step = 0; step < Steps; step++)
            {
                foreach (var group in optimizer.ParamGroups) group.LearningRate = options.LearningRateAt(step);
                optimizer.zero_grad();
                var (input, target) = data[step];
                var logits = model.forward(input).narrow(-1, 0, Config.Vocabulary); // the real vocabulary's columns only
                var loss = nn.functional.cross_entropy(logits.reshape(-1, Config.Vocabulary), target.reshape(-1));
                loss.backward();
                losses.Add(loss.item<float>());
                gradients ??= model.named_parameters().ToDictionary(p => p.name, p => p.parameter.grad!.clone());
                optimizer.step();
            }
            return (logical, data, new Expected(losses, gradients!, model.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.detach().clone())));
        }

        /// <summary>Each pp rank exports what it holds, tp peers the same gathered tensors: their union is the model.</summary>
        private static Dictionary<string, Tensor> Union(IEnumerable<Dictionary<string, Tensor>> parts, string where)
        {
            var union = new Dictionary<string, Tensor>();
            foreach (var (name, tensor) in parts.SelectMany(p => p))
            {
                if (union.TryGetValue(name, out var seen)) Close(seen, tensor, $"{where}: {name} differs between the ranks holding it");
                else union[name] = tensor;
            }
            return union;
        }

        internal static void AllClose(Dictionary<string, Tensor> expected, Dictionary<string, Tensor> actual, string what)
        {
            Assert.Equal(expected.Keys.OrderBy(k => k), actual.Keys.OrderBy(k => k));
            foreach (var (name, tensor) in expected) Close(tensor, actual[name], $"{what} {name}");
        }

        /// <summary>The largest difference at most 1e-5 × the reference's largest magnitude.</summary>
        internal static void Close(Tensor expected, Tensor actual, string what)
        {
            Assert.True(expected.shape.SequenceEqual(actual.shape), $"{what}: shape [{string.Join(", ", actual.shape)}], expected [{string.Join(", ", expected.shape)}]");
            var e = expected.detach().to(torch.float64);
            double scale = e.abs().max().item<double>(), difference = (e - actual.detach().to(torch.float64)).abs().max().item<double>();
            Assert.True(difference <= 1e-5 * Math.Max(scale, 1e-12), $"{what}: largest difference {difference:E3} exceeds 1e-5 × {scale:E3}");
        }
    }
}
