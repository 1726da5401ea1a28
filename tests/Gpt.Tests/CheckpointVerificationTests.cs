using System;
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
    /// A damaged or foreign checkpoint is an error naming the file and the tensor, on every rank, and the model and
    /// optimizer are exactly as they were before the call (compared byte for byte on every rank).
    /// </summary>
    [Trait("Category", "Checkpoint")]
    public sealed class CheckpointVerificationTests : IDisposable
    {
        private readonly string folder = Directory.CreateTempSubdirectory("checkpoint-verify-").FullName;

        public void Dispose() => Directory.Delete(folder, recursive: true);

        [Theory]
        [InlineData("missing file", "rank-00003.safetensors is missing (it holds '")]
        [InlineData("truncated file", "rank-00001.safetensors is truncated: bytes [")]
        [InlineData("flipped byte", "does not match its checksum: the file is corrupt.")]
        [InlineData("another model", "is not a checkpoint of this model: missing [blocks.4.")]
        [InlineData("another width", "has logical shape [")]
        [InlineData("missing manifest", "manifest.json is missing: the save did not complete")]
        [InlineData("not a checkpoint", "is not a checkpoint: it has neither manifest.json nor a 'latest' pointer.")]
        public void ABadCheckpointIsRefusedNamingWhatIsWrongAndChangesNothing(string damage, string expected)
        {
            var options = CheckpointTests.Options("1,2,2");
            var data = CheckpointTests.Data();
            CheckpointTests.Train(options, CheckpointTests.InitialWeights(), data, 0, 2, load: null, save: folder);
            var directory = Path.Combine(folder, File.ReadAllText(Path.Combine(folder, "latest")).Trim());
            var path = folder;
            switch (damage)
            {
                case "missing file":
                    File.Delete(Path.Combine(directory, "rank-00003.safetensors"));
                    break;
                case "truncated file":
                {
                    var file = Path.Combine(directory, "rank-00001.safetensors");
                    using var stream = new FileStream(file, FileMode.Open);
                    stream.SetLength(stream.Length - 100);
                    break;
                }
                case "flipped byte":
                {
                    var file = Path.Combine(directory, "rank-00002.safetensors");
                    var bytes = File.ReadAllBytes(file);
                    bytes[bytes.Length / 2] ^= 0x40;
                    File.WriteAllBytes(file, bytes);
                    break;
                }
                case "another model":
                    options = options with { Config = options.Config with { Depth = 6 } };
                    break;
                case "another width":
                    options = options with { Config = options.Config with { Width = 64 } };
                    break;
                case "missing manifest":
                    File.Delete(Path.Combine(directory, "manifest.json"));
                    path = directory;
                    break;
                case "not a checkpoint":
                    path = Path.Combine(folder, "nothing-here");
                    Directory.CreateDirectory(path);
                    break;
            }
            var before = new byte[options.Mesh.World][];
            var after = new byte[options.Mesh.World][];
            var messages = new string?[options.Mesh.World];
            var failure = Assert.Throws<RankFailedException>(() => Ranks.Run(options.Mesh, context =>
            {
                torch.manual_seed(99);
                var training = new GptTraining(options);
                var (input, target) = data[0];
                training.Step(0, input, target); // some optimizer state to protect
                before[context.Rank] = Snapshot(training);
                try
                {
                    training.Load(path);
                }
                catch (Exception e)
                {
                    messages[context.Rank] = $"{e.GetType().Name}: {e.Message}";
                    throw;
                }
                finally
                {
                    after[context.Rank] = Snapshot(training);
                }
            }, new RunOptions { VirtualPipelineStages = options.VirtualStages }));
            for (int rank = 0; rank < options.Mesh.World; rank++)
            {
                Assert.True(messages[rank] is not null, $"rank {rank} did not refuse the checkpoint: {failure.Message}");
                Assert.Contains(expected, messages[rank]);
                Assert.True(before[rank].AsSpan().SequenceEqual(after[rank]), $"rank {rank}'s model or optimizer changed although the load was refused ({damage}): {Difference(before[rank], after[rank])}");
            }
        }

        [Fact]
        public void AnotherOptimizerOrNoneSavedIsRefused()
        {
            var model = new GptModel(CheckpointTests.Options("1,1,1").Config, 512);
            Checkpoint.Save(folder, model, null, new CheckpointState { Step = 1 });
            var error = Assert.Throws<CheckpointException>(() => Checkpoint.Load(folder, model, torch.optim.Adam(model.parameters())));
            Assert.Contains("was saved without optimizer state", error.Message);
            var sgd = torch.optim.SGD(model.parameters(), 0.1);
            var refused = Assert.Throws<NotSupportedException>(() => Checkpoint.Save(folder, model, sgd, new CheckpointState { Step = 2 }));
            Assert.Contains("Checkpoint saves the state of Adam and AdamW; SGD is not supported", refused.Message);
        }

        [Fact]
        public void ADtypeMismatchIsRefusedNamingTheTensorAndChangesNothing()
        {
            var config = CheckpointTests.Options("1,1,1").Config;
            Checkpoint.Save(folder, new GptModel(config, 512), null, new CheckpointState { Step = 1 });
            var wider = new GptModel(config, 512).to(torch.float64);
            var before = wider.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.clone());
            var error = Assert.Throws<CheckpointException>(() => Checkpoint.Load(folder, wider, null));
            Assert.Contains("' in ", error.Message);
            Assert.Contains("is F32; this model's is F64.", error.Message);
            foreach (var (name, tensor) in wider.state_dict()) Assert.True(tensor.equal(before[name]).all().item<bool>(), name);
        }

        [Fact]
        public void OnlyTheNewestCheckpointsAreKeptAndLatestPointsAtTheNewest()
        {
            var model = new GptModel(CheckpointTests.Options("1,1,1").Config, 512);
            for (int step = 1; step <= 5; step++) Checkpoint.Save(folder, model, null, new CheckpointState { Step = step }, keep: 2);
            Assert.Equal(new[] { "step-00000004", "step-00000005" }, Directory.GetDirectories(folder).Select(Path.GetFileName).OrderBy(n => n).ToArray());
            Assert.Equal("step-00000005", File.ReadAllText(Path.Combine(folder, "latest")));
            Assert.Equal(5, Checkpoint.Load(folder, model, null).Step);
            var again = Assert.Throws<CheckpointException>(() => Checkpoint.Save(folder, model, null, new CheckpointState { Step = 5 }));
            Assert.Contains("step-00000005 exists already", again.Message);
            // A save that crashed between renaming its directory and moving latest left step 6 committed but not pointed at:
            // the resumed run's save of step 6 replaces it.
            Checkpoint.Save(folder, model, null, new CheckpointState { Step = 6 }, keep: 2);
            File.WriteAllText(Path.Combine(folder, "latest"), "step-00000005");
            Checkpoint.Save(folder, model, null, new CheckpointState { Step = 6, DataPosition = 66 }, keep: 2);
            Assert.Equal(66, Checkpoint.Load(folder, model, null).DataPosition);
        }

        private static string Difference(byte[] a, byte[] b)
        {
            int i = 0;
            while (i < Math.Min(a.Length, b.Length) && a[i] == b[i]) i++;
            return $"lengths {a.Length} and {b.Length}, first difference at byte {i}";
        }

        /// <summary>Every tensor of the model's state and of the optimizer's, as bytes.</summary>
        private static byte[] Snapshot(GptTraining training)
        {
            using var stream = new MemoryStream();
            foreach (var (_, tensor) in training.Model.state_dict().Where(kv => kv.Value.device.type != DeviceType.META))
            {
                using var copy = tensor.detach().clone(); // alive while its bytes are read
                stream.Write(copy.bytes);
            }
            training.WriteOptimizerState(stream);
            return stream.ToArray();
        }
    }
}
