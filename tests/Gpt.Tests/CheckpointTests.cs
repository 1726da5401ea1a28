using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using ModelParallel.Checkpointing;
using ModelParallel.Examples.Gpt.Model;
using ModelParallel.Examples.Gpt.Training;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace ModelParallel.Tests
{
    /// <summary>
    /// Save at step 5 of 10, resume, and the rest of the run is the uninterrupted run's: bitwise on the same mesh, within
    /// relative 1e-5 on another (tp, pp and dp changed, and all three at once). The GPT has every kind of placement:
    /// a vocabulary-sharded embedding, a q/k/v projection sharded in 3 blocks, RowParallel weights, replicated norms.
    /// </summary>
    [Trait("Category", "Checkpoint")]
    public sealed class CheckpointTests : IDisposable
    {
        private const int Steps = 10, SaveAt = 5;
        private const long Batch = 4;
        private static readonly GptConfig Config = new(Vocabulary: 300, Width: 32, Depth: 4, Heads: 4, Context: 8);
        private static readonly long Padded = GptConfig.PadVocabulary(Config.Vocabulary, 4);
        private readonly string folder = Directory.CreateTempSubdirectory("checkpoint-").FullName;

        public void Dispose() => Directory.Delete(folder, recursive: true);

        [Theory]
        [InlineData("1,2,2", "1,2,2")]   // the same mesh: bitwise
        [InlineData("1,1,4", "1,1,2")]   // tp 4 -> 2
        [InlineData("1,2,1", "1,1,1")]   // pp 2 -> 1
        [InlineData("1,1,1", "2,1,1")]   // dp 1 -> 2
        [InlineData("2,2,2", "1,1,4")]   // dp × pp × tp all changed
        [InlineData("1,2,1i", "1,4,1")]  // interleaved chunks to plain stages
        public void AResumedRunContinuesTheUninterruptedOne(string saved, string resumed)
        {
            var data = Data();
            var logical = InitialWeights();
            var uninterrupted = Train(Options(saved), logical, data, 0, Steps, load: null, save: null);
            var first = Train(Options(saved), logical, data, 0, SaveAt, load: null, save: folder);
            Assert.Equal(uninterrupted.Losses.Take(SaveAt), first.Losses); // the same run up to the save
            var rest = Train(Options(resumed), null, data, SaveAt, Steps, load: folder, save: null);
            bool same = saved == resumed;
            for (int step = SaveAt; step < Steps; step++)
            {
                double expected = uninterrupted.Losses[step], actual = rest.Losses[step - SaveAt];
                if (same) Assert.True(expected == actual, $"step {step + 1}: {actual} after resuming, {expected} uninterrupted (must be bitwise equal on the same mesh)");
                else Assert.True(Math.Abs(expected - actual) <= 1e-5 * Math.Abs(expected), $"{saved} -> {resumed}, step {step + 1}: {actual} vs {expected}");
            }
            foreach (var (name, tensor) in uninterrupted.Parameters)
            {
                if (same) Assert.True(tensor.equal(rest.Parameters[name]).all().item<bool>(), $"{name} differs after resuming on the same mesh");
                else GptEquivalenceTests.Close(tensor, rest.Parameters[name], $"{saved} -> {resumed}: {name} after {Steps} steps");
            }
            Assert.Equal(SaveAt, rest.ResumedStep);
        }

        [Fact]
        public void ConsolidatingGivesTheLogicalStateAndARunStartsFromIt()
        {
            var data = Data();
            var run = Train(Options("1,2,2"), InitialWeights(), data, 0, SaveAt, load: null, save: folder);
            var consolidated = Checkpoint.Consolidate(folder);
            Assert.Equal(run.Parameters.Keys.OrderBy(k => k), consolidated.Keys.OrderBy(k => k));
            foreach (var (name, tensor) in run.Parameters) Assert.True(tensor.equal(consolidated[name]).all().item<bool>(), name);
            // One safetensors file, read back and loaded into a single-device model.
            var file = Path.Combine(folder, "consolidated.safetensors");
            Checkpoint.SaveStateDict(file, consolidated);
            var single = new GptModel(Config, Padded);
            LogicalState.Load(single, Checkpoint.ReadStateDict(file));
            foreach (var (name, tensor) in single.state_dict()) Assert.True(tensor.equal(consolidated[name]).all().item<bool>(), name);
        }

        internal sealed record Outcome(List<double> Losses, Dictionary<string, Tensor> Parameters, long ResumedStep);

        /// <summary>Trains steps [from, to) on a mesh; loads a checkpoint first or saves one at the end.</summary>
        internal static Outcome Train(TrainingOptions options, Dictionary<string, Tensor>? logical, List<(Tensor, Tensor)> data, int from, int to, string? load, string? save)
        {
            var results = Ranks.Run(options.Mesh, context =>
            {
                var training = new GptTraining(options, logical);
                long resumed = -1;
                if (load is not null) resumed = training.Load(load).Step;
                var losses = new List<double>();
                for (int step = from; step < to; step++)
                {
                    var (input, target) = data[step];
                    int d = context.Coordinates.Dp;
                    long rows = input.shape[0] / options.Mesh.Dp;
                    losses.Add(training.Step(step, input.narrow(0, d * rows, rows), target.narrow(0, d * rows, rows)));
                }
                if (save is not null) training.Save(save, new CheckpointState { Step = to, DataPosition = to });
                return (Losses: losses, Parameters: LogicalState.Export(training.Model), Resumed: resumed);
            }, new RunOptions { VirtualPipelineStages = options.VirtualStages });
            var union = new Dictionary<string, Tensor>();
            foreach (var (name, tensor) in results.SelectMany(r => r.Parameters)) union.TryAdd(name, tensor);
            return new Outcome(results[0].Losses, union, results[0].Resumed);
        }

        /// <summary>"dp,pp,tp", with an "i" for the interleaved schedule.</summary>
        internal static TrainingOptions Options(string mesh)
        {
            bool interleaved = mesh.EndsWith('i');
            var sizes = mesh.TrimEnd('i').Split(',').Select(int.Parse).ToArray();
            return new TrainingOptions(Config, new MeshShape(dp: sizes[0], pp: sizes[1], tp: sizes[2]))
            {
                Schedule = interleaved ? "interleaved" : "1f1b", Microbatches = 2, Steps = Steps, Batch = Batch / sizes[0], BuiltVocabulary = Padded, WarmupSteps = 2,
            };
        }

        internal static Dictionary<string, Tensor> InitialWeights()
        {
            torch.manual_seed(23);
            return new GptModel(Config, Padded).state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.detach().clone());
        }

        internal static List<(Tensor, Tensor)> Data()
        {
            var generator = new torch.Generator(31);
            return Enumerable.Range(0, Steps).Select(_ =>
            {
                var tokens = torch.randint(Config.Vocabulary, new[] { Batch, Config.Context + 1 }, generator: generator);
                return (tokens.narrow(1, 0, Config.Context).contiguous(), tokens.narrow(1, 1, Config.Context).contiguous());
            }).ToList();
        }
    }
}
