using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Linq;
using ModelParallel.Examples.Gpt.Model;
using ModelParallel.Layers;
using TorchSharp;
using static TorchSharp.torch;

namespace ModelParallel.Benchmarks
{
    /// <summary>
    /// Where one device's GPT step goes (Peers --profile): forward of the model, the loss, backward and AdamW's step,
    /// each timed on its own (medians of 8 steps), against peers.py's same profile for PyTorch (python3 peers.py
    /// gpt profile). The numbers a reader needs to explain the one-device row.
    /// </summary>
    internal static class Profile
    {
        public static int Run()
        {
            torch.set_num_threads(1);
            var config = new GptConfig(Vocabulary: 50257, Width: 128, Depth: 4, Heads: 4, Context: 64);
            var phases = new Dictionary<string, List<double>> { ["forward"] = new(), ["loss"] = new(), ["backward"] = new(), ["optimizer"] = new() };
            Ranks.Run(new MeshShape(), _ =>
            {
                var model = new GptModel(config, config.PaddedVocabulary(1));
                var loss = new VocabParallelLoss(config.Vocabulary);
                var adam = new InPlaceAdamW(model.parameters(), lr: 3e-4, beta1: 0.9, beta2: 0.95, weight_decay: 0.01);
                using var tokens = torch.randint(config.Vocabulary, new[] { 16L, config.Context + 1 }, generator: new torch.Generator(7));
                using var input = tokens.narrow(1, 0, config.Context).contiguous();
                using var target = tokens.narrow(1, 1, config.Context).contiguous();
                for (int step = 0; step < 11; step++)
                {
                    using var scope = torch.NewDisposeScope();
                    adam.zero_grad();
                    var clock = Stopwatch.StartNew();
                    var logits = model.forward(input);
                    double forward = Lap(clock);
                    var value = loss.Compute(logits, target);
                    double lossTime = Lap(clock);
                    value.backward();
                    double backward = Lap(clock);
                    adam.step();
                    double optimizer = Lap(clock);
                    if (step < 3) continue; // warm-up
                    phases["forward"].Add(forward);
                    phases["loss"].Add(lossTime);
                    phases["backward"].Add(backward);
                    phases["optimizer"].Add(optimizer);
                }
                return 0;
            });
            foreach (var (phase, times) in phases)
                Console.WriteLine(FormattableString.Invariant($"{phase,-10} {times.OrderBy(t => t).ElementAt(times.Count / 2),8:F1} ms"));
            return 0;
        }

        /// <summary>Single-thread fp32 matmul rates of the LM head's three products and of 2048 × 2048, in GFLOP/s.</summary>
        public static int Matmul()
        {
            torch.set_num_threads(1);
            using var x = torch.randn(1024, 128);
            using var w = torch.randn(50304, 128);
            using var g = torch.randn(1024, 50304);
            using var a = torch.randn(2048, 2048);
            foreach (var (name, flops, product) in new (string, double, Func<Tensor>)[]
            {
                ("x @ w.T", 2.0 * 1024 * 128 * 50304, () => x.matmul(w.t())),
                ("g @ w", 2.0 * 1024 * 128 * 50304, () => g.matmul(w)),
                ("g.T @ x", 2.0 * 1024 * 128 * 50304, () => g.t().matmul(x)),
                ("2048 square", 2.0 * 2048 * 2048 * 2048, () => a.matmul(a)),
            })
            {
                product().Dispose();
                var clock = Stopwatch.StartNew();
                for (int i = 0; i < 3; i++) product().Dispose();
                double seconds = clock.Elapsed.TotalSeconds / 3;
                Console.WriteLine(FormattableString.Invariant($"{name,-12} {seconds * 1e3,7:F1} ms {flops / seconds / 1e9,6:F1} GFLOP/s"));
            }
            return 0;
        }

        private static double Lap(Stopwatch clock)
        {
            double ms = clock.Elapsed.TotalMilliseconds;
            clock.Restart();
            return ms;
        }
    }
}
