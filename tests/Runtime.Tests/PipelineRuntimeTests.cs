using System;
using System.Linq;
using System.Text.Json;
using ModelParallel.Pipelining;
using ModelParallel.Tests.Models;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace ModelParallel.Tests
{
    /// <summary>What each rank builds, how misuse is reported, and the timeline of a step.</summary>
    [Trait("Category", "Pipeline")]
    public sealed class PipelineRuntimeTests
    {
        private static readonly ModelShape Shape = new(Features: 6, Width: 8, Hidden: 16, Outputs: 3, Depth: 4, Bias: true);

        [Fact]
        public void EachRankAllocatesOnlyTheLayersOfItsStage()
        {
            var held = Ranks.Run(new MeshShape(pp: 2), context =>
            {
                var model = new PipelineTestModel(Shape);
                return model.named_parameters().Where(p => p.parameter.device.type != DeviceType.META).Select(p => p.name).OrderBy(n => n).ToArray();
            });
            static string[] Block(int i) => new[] { "norm.weight", "norm.bias", "up.weight", "up.bias", "down.weight", "down.bias" }.Select(n => $"blocks.{i}.{n}").ToArray();
            var first = new[] { "input.weight", "input.bias" }.Concat(Block(0)).Concat(Block(1)).OrderBy(n => n);
            var last = Block(2).Concat(Block(3)).Concat(new[] { "norm.weight", "norm.bias", "head.weight", "head.bias" }).OrderBy(n => n);
            Assert.Equal(first, held[0]);
            Assert.Equal(last, held[1]);
        }

        [Fact]
        public void CallingForwardDirectlyOnAPipelinedModelNamesTheLayerAndTheExecutor()
        {
            var error = Assert.Throws<RankFailedException>(() => Ranks.Run(new MeshShape(pp: 2), context =>
            {
                var model = new PipelineTestModel(Shape);
                model.forward(torch.ones(2, Shape.Features));
            }));
            Assert.Contains("PipelineExecutor.Step", error.ToString());
            Assert.Contains("PipelineTestModel.", error.ToString());
        }

        [Fact]
        public void AScheduleForAnotherMeshIsRejectedBeforeAnyWork()
        {
            var error = Assert.Throws<RankFailedException>(() => Ranks.Run(new MeshShape(pp: 2), context =>
                new PipelineExecutor(new PipelineTestModel(Shape), PipelineSchedule.GPipe(4, 4), (y, t) => nn.functional.mse_loss(y, t))));
            Assert.Contains("Schedule 'gpipe' has 4 stages; the mesh has pp = 2", error.ToString());
        }

        [Fact]
        public void ABatchThatDoesNotSplitIntoMicrobatchesIsAClearError()
        {
            var error = Assert.Throws<RankFailedException>(() => Ranks.Run(new MeshShape(pp: 2), context =>
            {
                var executor = new PipelineExecutor(new PipelineTestModel(Shape), PipelineSchedule.GPipe(2, 4), (y, t) => nn.functional.mse_loss(y, t));
                executor.Step(torch.ones(6, Shape.Features), torch.ones(6, Shape.Outputs));
            }));
            Assert.Contains("does not split into 4 equal micro-batches", error.ToString());
        }

        [Fact]
        public void TheTraceHasOneTrackPerRankWithEveryActionAndABubble()
        {
            var traces = Ranks.Run(new MeshShape(pp: 2), context =>
            {
                var executor = new PipelineExecutor(new PipelineTestModel(Shape), PipelineSchedule.OneForwardOneBackward(2, 4), (y, t) => nn.functional.mse_loss(y, t));
                executor.Step(torch.ones(8, Shape.Features), torch.ones(8, Shape.Outputs));
                return PipelineTrace.Gather(executor);
            });
            Assert.Null(traces[1]);
            var trace = traces[0]!;
            var schedule = PipelineSchedule.OneForwardOneBackward(2, 4);
            Assert.Equal(schedule.Ranks.Sum(r => r.Count), trace.Events.Count);
            for (int r = 0; r < 2; r++)
                Assert.Equal(schedule.Ranks[r].Select(a => (a.Kind, a.Microbatch)), trace.Events.Where(e => e.Rank == r).Select(e => (e.Kind, e.Microbatch)));
            Assert.All(trace.Events, e => Assert.True(e.End >= e.Start));
            Assert.InRange(trace.BubbleFraction, 0.0, 1.0);

            using var json = JsonDocument.Parse(trace.ToChromeTrace());
            var slices = json.RootElement.GetProperty("traceEvents").EnumerateArray().Where(e => e.GetProperty("ph").GetString() == "X").ToList();
            Assert.Equal(new[] { 0, 1 }, slices.Select(e => e.GetProperty("tid").GetInt32()).Distinct().OrderBy(t => t));
            Assert.Equal(8, slices.Count(e => e.GetProperty("cat").GetString() == "compute" && e.GetProperty("tid").GetInt32() == 0));
            Assert.Contains(slices, e => e.GetProperty("name").GetString() == "B3");
            var svg = trace.ToSvg();
            Assert.StartsWith("<svg", svg);
            Assert.Equal(16, svg.Split("fill=\"#4a7fd4\"").Length - 1 + svg.Split("fill=\"#3ea85a\"").Length - 1);
        }

        [Fact]
        public void IdealBubbleFractionIsTheTextbookFormula()
        {
            Assert.Equal(3.0 / 11, PipelineTrace.IdealBubbleFraction(4, 8), 12);
            Assert.Equal(1.0 / 9, PipelineTrace.IdealBubbleFraction(2, 4, 2), 12);
        }
    }
}
