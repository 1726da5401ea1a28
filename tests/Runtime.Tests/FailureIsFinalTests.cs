using System;
using System.IO;
using System.Linq;
using System.Threading;
using ModelParallel.Tests.Models;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace ModelParallel.Tests
{
    /// <summary>
    /// Once any rank has failed, no rank's parameters or optimizer state change again. A dp 2 × tp 2 run trains one good
    /// Adam step, then one rank fails somewhere in the second; every rank's state at the end equals its state before the
    /// second step, byte for byte. The hard case is a fault after backward: the other ranks have finished every collective
    /// of the step and would step at once, but optimizer.step() is a commit point (StepCommit) that no rank passes alone.
    /// </summary>
    [Trait("Category", "Faults")]
    public sealed class FailureIsFinalTests
    {
        private static readonly ModelShape Shape = new(Features: 8, Width: 16, Hidden: 32, Outputs: 4, Depth: 2, Bias: true);
        private const int Faulty = 3;

        [Theory]
        [InlineData("throw-in-forward", "InvalidOperationException: injected fault in forward on rank 3")]
        [InlineData("throw-after-backward", "InvalidOperationException: injected fault after backward on rank 3")]
        [InlineData("extra-collective", "CollectiveMismatchException")]
        [InlineData("stall-before-step", "CollectiveTimeoutException")]
        public void AFaultOnOneRankLeavesEveryRanksParametersAndOptimizerStateAsTheyWere(string fault, string expected)
        {
            var mesh = new MeshShape(dp: 2, tp: 2);
            var before = new byte[mesh.World][];
            var after = new byte[mesh.World][];
            var steps = new int[mesh.World];
            var error = Assert.Throws<RankFailedException>(() => Ranks.Run(mesh, context =>
            {
                var model = new TestModel(Shape);
                var optimizer = torch.optim.Adam(model.parameters(), lr: 0.01);
                var input = torch.ones(3, Shape.Features) * (context.Coordinates.Dp + 1);
                bool faulty = context.Rank == Faulty;
                for (int step = 0; step < 2; step++)
                {
                    bool inject = faulty && step == 1;
                    optimizer.zero_grad();
                    if (step == 1) before[context.Rank] = Snapshot(model, optimizer);
                    try
                    {
                        if (inject && fault == "throw-in-forward") throw new InvalidOperationException($"injected fault in forward on rank {context.Rank}");
                        if (inject && fault == "extra-collective") context.TensorParallel.AllReduce(torch.ones(5));
                        var loss = nn.functional.mse_loss(model.forward(input), torch.zeros(3, Shape.Outputs));
                        loss.backward();
                        if (inject && fault == "throw-after-backward") throw new InvalidOperationException($"injected fault after backward on rank {context.Rank}");
                        if (inject && fault == "stall-before-step") Thread.Sleep(TimeSpan.FromSeconds(2.5));
                        optimizer.step();
                        steps[context.Rank]++;
                    }
                    finally
                    {
                        if (step == 1) after[context.Rank] = Snapshot(model, optimizer);
                    }
                }
            }, new RunOptions { CollectiveTimeout = TimeSpan.FromSeconds(1) }));
            Assert.Contains(expected, error.Message);
            Assert.Equal(new[] { 1, 1, 1, 1 }, steps);
            for (int rank = 0; rank < mesh.World; rank++)
            {
                Assert.True(before[rank] is not null && after[rank] is not null, $"rank {rank} took no snapshot");
                Assert.True(before[rank].AsSpan().SequenceEqual(after[rank]), $"rank {rank}'s parameters or optimizer state changed after the '{fault}' fault on rank {Faulty}");
            }
        }

        /// <summary>
        /// The commit barrier is each rank's last collective of a step. Ranks 0 and 1 are held up inside their first
        /// optimizer.step() (the replica check reads the optimizer's parameters) while ranks 2 and 3 step and rank 3 fails at
        /// once in its next step. Had any collective of the step come after the barrier (once, the replica check did), the
        /// failure would stop ranks 0 and 1 there: two ranks stepped, two not. Every rank must have stepped once.
        /// </summary>
        [Fact]
        public void AFailureAfterAnotherRankPassedTheCommitDoesNotStopItsStep()
        {
            var mesh = new MeshShape(dp: 2, tp: 2);
            var steps = new int[mesh.World];
            var error = Assert.Throws<RankFailedException>(() => Ranks.Run(mesh, context =>
            {
                var model = new TestModel(Shape);
                var optimizer = new SlowParameters(model.parameters(), slow: context.Coordinates.Dp == 0);
                var input = torch.ones(3, Shape.Features) * (context.Coordinates.Dp + 1);
                for (int step = 0; step < 2; step++)
                {
                    if (context.Rank == Faulty && step == 1) throw new InvalidOperationException($"injected fault in forward on rank {context.Rank}");
                    optimizer.zero_grad();
                    nn.functional.mse_loss(model.forward(input), torch.zeros(3, Shape.Outputs)).backward();
                    optimizer.Armed = step == 0;
                    optimizer.step();
                    optimizer.Armed = false;
                    steps[context.Rank]++;
                }
            }, new RunOptions { CollectiveTimeout = TimeSpan.FromSeconds(2) }));
            Assert.Contains("injected fault in forward on rank 3", error.Message);
            Assert.Equal(new[] { 1, 1, 1, 1 }, steps);
        }

        /// <summary>SGD whose parameter list takes 300 ms to read on a slow rank while armed.</summary>
        private sealed class SlowParameters : TorchSharp.Modules.SGD
        {
            private readonly bool slow;

            public SlowParameters(System.Collections.Generic.IEnumerable<TorchSharp.Modules.Parameter> parameters, bool slow) : base(parameters, 0.01) => this.slow = slow;

            public bool Armed { get; set; }

            public override System.Collections.Generic.IEnumerable<TorchSharp.Modules.Parameter> parameters()
            {
                if (Armed && slow) Thread.Sleep(300);
                return base.parameters();
            }
        }

        [Fact]
        public void StepOutsideARunIsThePlainStep()
        {
            var model = new ReferenceModel(Shape);
            var optimizer = torch.optim.SGD(model.parameters(), 0.1);
            var reference = new ReferenceModel(Shape);
            reference.load_state_dict(model.state_dict());
            var referenceOptimizer = torch.optim.SGD(reference.parameters(), 0.1);
            nn.functional.mse_loss(model.forward(torch.ones(2, Shape.Features)), torch.zeros(2, Shape.Outputs)).backward();
            nn.functional.mse_loss(reference.forward(torch.ones(2, Shape.Features)), torch.zeros(2, Shape.Outputs)).backward();
            optimizer.step();
            // The same step through the optimizer's own virtual method, which no interceptor sees.
            Func<Func<Tensor>, Tensor> plain = referenceOptimizer.step;
            plain(null!);
            foreach (var (name, tensor) in reference.state_dict()) TensorAssert.Close(tensor, model.state_dict()[name], name, 0);
        }

        /// <summary>Every parameter's bytes, then the optimizer's serialized state.</summary>
        private static byte[] Snapshot(nn.Module<Tensor, Tensor> model, torch.optim.Optimizer optimizer)
        {
            using var stream = new MemoryStream();
            foreach (var (_, tensor) in model.state_dict())
            {
                using var copy = tensor.detach().clone(); // alive while its bytes are read: a finalized tensor frees its memory
                stream.Write(copy.bytes);
            }
            using (var writer = new BinaryWriter(stream, System.Text.Encoding.UTF8, leaveOpen: true))
                ((TorchSharp.Modules.OptimizerHelper)optimizer).save_state_dict(writer);
            return stream.ToArray();
        }
    }
}
