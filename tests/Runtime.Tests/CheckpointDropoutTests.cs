using System;
using System.IO;
using System.Linq;
using ModelParallel.Checkpointing;
using ModelParallel.Tests.Models;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace ModelParallel.Tests
{
    /// <summary>The random streams resume too: a model with dropout saved at step 3 of 6 and resumed on the same mesh continues bitwise.</summary>
    [Trait("Category", "Checkpoint")]
    public sealed class CheckpointDropoutTests : IDisposable
    {
        private readonly string folder = Directory.CreateTempSubdirectory("checkpoint-dropout-").FullName;

        public void Dispose() => Directory.Delete(folder, recursive: true);

        [Fact]
        public void DropoutMasksAfterAResumeAreTheUninterruptedRunsMasks()
        {
            var mesh = new MeshShape(tp: 2);
            var input = torch.ones(4, 8);
            double[] Run(int from, int to, bool load, bool save) => Ranks.Run(mesh, _ =>
            {
                var model = new DropoutMlp(8, shardedDropout: true);
                var optimizer = torch.optim.Adam(model.parameters(), lr: 0.01);
                if (load) Checkpoint.Load(folder, model, optimizer);
                var losses = new double[to - from];
                for (int step = from; step < to; step++)
                {
                    optimizer.zero_grad();
                    var loss = model.forward(input).square().mean();
                    loss.backward();
                    optimizer.step();
                    losses[step - from] = loss.item<float>();
                }
                if (save) Checkpoint.Save(folder, model, optimizer, new CheckpointState { Step = to });
                return losses;
            })[0];
            var uninterrupted = Run(0, 6, load: false, save: false);
            Run(0, 3, load: false, save: true);
            var resumed = Run(3, 6, load: true, save: false);
            Assert.Equal(uninterrupted.Skip(3).ToArray(), resumed);
        }
    }
}
