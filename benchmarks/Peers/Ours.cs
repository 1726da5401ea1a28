using System;
using System.Diagnostics;
using System.Globalization;
using System.Linq;
using ModelParallel.DataParallel;
using ModelParallel.Examples.Gpt.Model;
using ModelParallel.Examples.Gpt.Training;
using ModelParallel.Examples.Transformer;
using TorchSharp;
using static TorchSharp.torch;

namespace ModelParallel.Benchmarks
{
    /// <summary>
    /// Our side of one row, as one process: on threads when started by the driver with dotnet, or as one rank of an
    /// <c>mpiexec</c> job. The models and sizes are those of peers.py; rank 0 prints "RESULT ms per step".
    /// </summary>
    internal static class Ours
    {
        public const long MlpWidth = 512, MlpHidden = 2048, MlpBatch = 64, BlockWidth = 256, BlockHeads = 8, BlockHidden = 1024, BlockBatch = 8, BlockTime = 64;
        public const int MlpDepth = 4, BlockDepth = 2;
        private static readonly GptConfig Gpt = new(Vocabulary: 50257, Width: 128, Depth: 4, Heads: 4, Context: 64);
        private const long GptBatch = 16;

        public static int Run(string model, string mesh, int steps)
        {
            torch.set_num_threads(1);
            var shape = mesh switch
            {
                "one" => new MeshShape(),
                "tp" => new MeshShape(tp: 2),
                "dp" => new MeshShape(dp: 2),
                "pp" => new MeshShape(pp: 2),
                _ => throw new ArgumentException($"unknown mesh '{mesh}' (one, tp, dp, pp)"),
            };
            var times = Ranks.Run(shape, _ => model switch
            {
                "mlp" => Stack(shape, steps, () => Enumerable.Range(0, MlpDepth).Select(_ => (nn.Module<Tensor, Tensor>)new GeneratedBlock(MlpWidth, MlpHidden)), new long[] { MlpBatch, MlpWidth }),
                "block" => Stack(shape, steps, () => Enumerable.Range(0, BlockDepth).Select(_ => (nn.Module<Tensor, Tensor>)new TransformerBlock(BlockWidth, BlockHeads, BlockHidden)), new long[] { BlockBatch, BlockTime, BlockWidth }),
                "gpt" => GptStep(shape, steps),
                _ => throw new ArgumentException($"unknown model '{model}' (mlp, block, gpt)"),
            });
            return ChildProcess.Report(times);
        }

        /// <summary>Milliseconds per step of forward, backward and Adam over a stack of blocks on a fixed input (each dp rank its rows).</summary>
        private static double Stack(MeshShape mesh, int steps, Func<System.Collections.Generic.IEnumerable<nn.Module<Tensor, Tensor>>> blocks, long[] input)
        {
            var context = RankContext.Current!;
            var model = nn.Sequential(blocks().Select((b, i) => ($"b{i}", b)).ToArray());
            var averaging = mesh.Dp > 1 ? DataParallelGradients.Attach(model) : null;
            var optimizer = torch.optim.Adam(model.parameters(), lr: 1e-4);
            using var generator = new torch.Generator(3);
            var whole = torch.empty(input).normal_(0, 1, generator);
            long rows = input[0] / mesh.Dp;
            using var x = whole.narrow(0, context.Coordinates.Dp * rows, rows).contiguous();
            void Step()
            {
                using var scope = torch.NewDisposeScope();
                optimizer.zero_grad();
                model.forward(x).square().mean().backward();
                averaging?.Synchronize();
                optimizer.step();
            }
            return Timed(steps, Step);
        }

        /// <summary>Milliseconds per step of the GPT example's training step (AdamW, vocabulary-parallel loss; 1F1B with 4 micro-batches on pp).</summary>
        private static double GptStep(MeshShape mesh, int steps)
        {
            var options = new TrainingOptions(Gpt, mesh) { Microbatches = mesh.Pp > 1 ? 4 : 1, Batch = GptBatch / mesh.Dp, Steps = steps + 3 };
            var training = new GptTraining(options);
            var context = RankContext.Current!;
            using var tokens = torch.randint(Gpt.Vocabulary, new[] { GptBatch, Gpt.Context + 1 }, generator: new torch.Generator(7));
            using var rows = tokens.narrow(0, context.Coordinates.Dp * options.Batch, options.Batch);
            using var input = rows.narrow(1, 0, Gpt.Context).contiguous();
            using var target = rows.narrow(1, 1, Gpt.Context).contiguous();
            int step = 0;
            return Timed(steps, () => training.Step(step++, input, target));
        }

        /// <summary>Three warm-up steps (as peers.py), then the mean of <paramref name="steps"/> between world barriers.</summary>
        private static double Timed(int steps, Action step)
        {
            var world = RankContext.Current!.World;
            for (int i = 0; i < 3; i++) step();
            world.Barrier();
            var clock = Stopwatch.StartNew();
            for (int i = 0; i < steps; i++) step();
            world.Barrier();
            return clock.Elapsed.TotalMilliseconds / steps;
        }
    }
}
