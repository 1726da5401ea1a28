using System;
using System.Linq;
using ModelParallel.Examples.Gpt.Model;
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
                "mlp" => StepTiming.Stack(Stack(MlpDepth, () => new GeneratedBlock(MlpWidth, MlpHidden)), new[] { MlpBatch, MlpWidth }, steps),
                "block" => StepTiming.Stack(Stack(BlockDepth, () => new TransformerBlock(BlockWidth, BlockHeads, BlockHidden)), new[] { BlockBatch, BlockTime, BlockWidth }, steps),
                "gpt" => GptTiming.Milliseconds(Gpt, shape, warmup: 3, steps),
                _ => throw new ArgumentException($"unknown model '{model}' (mlp, block, gpt)"),
            });
            return ChildProcess.Report(times);
        }

        private static nn.Module<Tensor, Tensor> Stack(int depth, Func<nn.Module<Tensor, Tensor>> block) =>
            nn.Sequential(Enumerable.Range(0, depth).Select(i => ($"b{i}", block())).ToArray());
    }
}
