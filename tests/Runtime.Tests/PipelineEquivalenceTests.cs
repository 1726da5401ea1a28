using System.Collections.Generic;
using System.Linq;
using ModelParallel.Pipelining;
using ModelParallel.Tests.Models;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace ModelParallel.Tests
{
    /// <summary>
    /// The pipelined model (written once, split by attributes) against the independent single-device
    /// <see cref="ReferencePipelineModel"/> from the same logical weights: the loss of the first step, every
    /// gradient of the whole batch (accumulated over micro-batches), and the parameters after 3 Adam steps.
    /// </summary>
    [Trait("Category", "Pipeline")]
    public sealed class PipelineEquivalenceTests
    {
        private static readonly ModelShape Shape = new(Features: 6, Width: 8, Hidden: 16, Outputs: 3, Depth: 8, Bias: true);
        private const int Steps = 3, Batch = 16;

        public static readonly TheoryData<int, int, string, int> Cases = new()
        {
            // pp, micro-batches, schedule, tp
            { 2, 1, "gpipe", 1 }, { 2, 4, "gpipe", 1 }, { 2, 8, "gpipe", 1 },
            { 4, 1, "gpipe", 1 }, { 4, 4, "gpipe", 1 }, { 4, 8, "gpipe", 1 },
            { 2, 1, "1f1b", 1 }, { 2, 4, "1f1b", 1 }, { 2, 8, "1f1b", 1 },
            { 4, 1, "1f1b", 1 }, { 4, 4, "1f1b", 1 }, { 4, 8, "1f1b", 1 },
            { 2, 4, "interleaved", 1 }, { 2, 8, "interleaved", 1 },
            { 4, 4, "interleaved", 1 }, { 4, 8, "interleaved", 1 },
            { 2, 4, "1f1b", 2 }, { 2, 4, "interleaved", 2 },
        };

        [Theory]
        [MemberData(nameof(Cases))]
        public void MatchesTheSingleDeviceModel(int pp, int microbatches, string schedule, int tp) => Check(1, pp, tp, microbatches, schedule);

        /// <summary>dp replicas of the pipeline, each on its part of the batch, gradients averaged after the step: the whole batch on one device.</summary>
        [Theory]
        [InlineData(2, 2, 1, 4, "1f1b")]
        [InlineData(2, 2, 1, 2, "gpipe")]
        [InlineData(2, 2, 2, 4, "interleaved")]
        public void DataParallelPipelinesMatchTheSingleDeviceModel(int dp, int pp, int tp, int microbatches, string schedule) => Check(dp, pp, tp, microbatches, schedule);

        private static void Check(int dp, int pp, int tp, int microbatches, string schedule)
        {
            var (logical, batches, expected) = Reference();
            int virtualStages = schedule == "interleaved" ? 2 : 1;
            var results = Ranks.Run(new MeshShape(dp: dp, pp: pp, tp: tp), context =>
            {
                var model = new PipelineTestModel(Shape);
                LogicalState.Load(model, logical);
                var executor = new PipelineExecutor(model, PipelineSchedule.Create(schedule, pp, microbatches, virtualStages), (y, t) => nn.functional.mse_loss(y, t));
                var averaging = dp > 1 ? DataParallel.DataParallelGradients.Attach(model, bucketElements: 200) : null;
                var optimizer = torch.optim.Adam(model.parameters(), lr: 0.01);
                double firstLoss = double.NaN;
                Dictionary<string, Tensor>? gradients = null;
                int part = Batch / dp, d = context.Coordinates.Dp;
                foreach (var (x, y) in batches)
                {
                    optimizer.zero_grad();
                    double loss = executor.Step(x.narrow(0, d * part, part), y.narrow(0, d * part, part));
                    averaging?.Synchronize();
                    // The whole batch's loss is the mean of the replicas' losses.
                    if (dp > 1) loss = Mean(context, loss);
                    if (gradients is null)
                    {
                        firstLoss = loss;
                        gradients = LogicalState.ExportGradients(model);
                    }
                    optimizer.step();
                }
                return (Loss: firstLoss, Gradients: gradients!, Parameters: LogicalState.Export(model));
            }, new RunOptions { VirtualPipelineStages = virtualStages });

            string where = $"dp={dp} pp={pp} tp={tp} m={microbatches} {schedule}";
            foreach (var (result, rank) in results.Select((r, i) => (r, i)))
                Assert.True(System.Math.Abs(result.Loss - expected.Loss.item<float>()) <= 1e-5 * System.Math.Max(1, System.Math.Abs(result.Loss)), $"{where} rank {rank}: loss {result.Loss} vs {expected.Loss.item<float>()}");
            var gradients = Union(results.Select(r => r.Gradients), where + " gradients");
            var parameters = Union(results.Select(r => r.Parameters), where + " parameters");
            TensorAssert.AllClose(expected.Gradients, gradients, $"{where}: gradient of");
            TensorAssert.AllClose(expected.Parameters, parameters, $"{where}: after {Steps} Adam steps,");
        }

        private static double Mean(RankContext context, double value)
        {
            using var t = torch.tensor(new[] { value });
            context.DataParallel.AllReduce(t, Communication.ReduceOp.Average);
            return t.item<double>();
        }

        /// <summary>Each pp rank exports the layers it holds; tp peers export the same gathered tensors. Their union is the model.</summary>
        private static Dictionary<string, Tensor> Union(IEnumerable<Dictionary<string, Tensor>> parts, string what)
        {
            var union = new Dictionary<string, Tensor>();
            foreach (var part in parts)
            {
                foreach (var (name, tensor) in part)
                {
                    if (union.TryGetValue(name, out var seen)) TensorAssert.Close(seen, tensor, $"{what}: {name} differs between ranks holding it");
                    else union[name] = tensor;
                }
            }
            return union;
        }

        private static (Dictionary<string, Tensor> Logical, List<(Tensor X, Tensor Y)> Batches, TrainingRun.Outcome Expected) Reference()
        {
            torch.manual_seed(21);
            var batches = Enumerable.Range(0, Steps).Select(_ => (torch.randn(Batch, Shape.Features), torch.randn(Batch, Shape.Outputs))).ToList();
            var reference = new ReferencePipelineModel(Shape);
            var logical = reference.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.detach().clone());
            var expected = TrainingRun.Train(reference, batches, gradients: m => m.named_parameters().ToDictionary(p => p.name, p => p.parameter.grad!.clone()),
                state: m => m.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.detach().clone()));
            return (logical, batches, expected);
        }
    }
}
