using System;
using System.Linq;
using ModelParallel.Communication;
using ModelParallel.Tests.Models;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace ModelParallel.Tests
{
    /// <summary>
    /// A collective that fails inside backward cannot throw through TorchSharp's native autograd engine. backward() must
    /// still fail in the rank's code (so no optimizer step follows), the run must report the original error, and the
    /// failed step's state must not be passed off as good.
    /// </summary>
    [Trait("Category", "Runtime")]
    public sealed class DeferredFailureTests
    {
        private static readonly ModelShape Shape = new(Features: 8, Width: 16, Hidden: 32, Outputs: 4, Depth: 1, Bias: true);

        [Fact]
        public void AFailedBackwardStopsTheRankBeforeItsOptimizerStepAndReportsTheOriginalFailure()
        {
            var before = new System.Collections.Generic.Dictionary<string, Tensor>[2];
            var after = new System.Collections.Generic.Dictionary<string, Tensor>[2];
            var stepped = new bool[2];
            var error = Assert.Throws<RankFailedException>(() => Ranks.Run(new MeshShape(tp: 2), context =>
            {
                var model = new TestModel(Shape);
                // Weight decay moves the weights even on zero gradients, as the old zero-gradient fallback produced.
                var optimizer = torch.optim.SGD(model.parameters(), learningRate: 0.1, weight_decay: 0.1);
                before[context.Rank] = model.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.clone());
                try
                {
                    var loss = nn.functional.mse_loss(model.forward(torch.ones(3, Shape.Features)), torch.zeros(3, Shape.Outputs));
                    FailingCommunicator.Of(context).FailNext = true;
                    loss.backward();
                    stepped[context.Rank] = true; // must not be reached
                    optimizer.step();
                }
                finally
                {
                    after[context.Rank] = model.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.clone());
                }
            }, new RunOptions { WrapCommunicator = (axis, inner) => axis == MeshAxis.Tensor ? new FailingCommunicator(inner) : inner }));
            Assert.Contains("injected transport failure", error.Message);
            Assert.IsType<System.IO.IOException>(error.InnerException);
            Assert.Equal(new[] { false, false }, stepped);
            for (int rank = 0; rank < 2; rank++)
                foreach (var (name, tensor) in before[rank]) TensorAssert.Close(tensor, after[rank][name], $"rank {rank} {name} after a failed backward", 0);
        }

        [Fact]
        public void ExportAfterAFailedBackwardThrowsTheOriginalFailure()
        {
            var error = Assert.Throws<RankFailedException>(() => Ranks.Run(new MeshShape(tp: 2), context =>
            {
                var model = new TestModel(Shape);
                var loss = nn.functional.mse_loss(model.forward(torch.ones(3, Shape.Features)), torch.zeros(3, Shape.Outputs));
                FailingCommunicator.Of(context).FailNext = true; // the next collective is backward's all-reduce (f)
                try
                {
                    loss.backward();                            // fails: libtorch rejects the failed function's gradient
                }
                catch (Exception)
                {
                    // A user who swallows the error...
                }
                LogicalState.Export(model);                     // ...still cannot export the failed step
                throw new InvalidOperationException("Export returned after a failed backward.");
            }, new RunOptions { WrapCommunicator = (axis, inner) => axis == MeshAxis.Tensor ? new FailingCommunicator(inner) : inner }));
            Assert.Contains("injected transport failure", error.InnerException!.Message);
        }

        [Fact]
        public void LoadAfterAFailedBackwardThrowsTheOriginalFailure()
        {
            var logical = new ReferenceModel(Shape).state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.detach().clone());
            var error = Assert.Throws<RankFailedException>(() => Ranks.Run(new MeshShape(tp: 2), context =>
            {
                var model = new TestModel(Shape);
                var loss = nn.functional.mse_loss(model.forward(torch.ones(3, Shape.Features)), torch.zeros(3, Shape.Outputs));
                FailingCommunicator.Of(context).FailNext = true;
                try
                {
                    loss.backward();
                }
                catch (Exception)
                {
                    // Swallowed, as above.
                }
                LogicalState.Load(model, logical);
                throw new InvalidOperationException("Load returned after a failed backward.");
            }, new RunOptions { WrapCommunicator = (axis, inner) => axis == MeshAxis.Tensor ? new FailingCommunicator(inner) : inner }));
            Assert.Contains("injected transport failure", error.InnerException!.Message);
        }

        /// <summary>A tp communicator whose next all-reduce fails as a broken transport would.</summary>
        private sealed class FailingCommunicator(ICommunicator inner) : ICommunicator
        {
            public bool FailNext { get; set; }

            public static FailingCommunicator Of(RankContext context) => (FailingCommunicator)context.TensorParallel;

            public int Rank => inner.Rank;

            public int Size => inner.Size;

            public void AllReduce(Tensor tensor, ReduceOp op = ReduceOp.Sum)
            {
                if (FailNext) throw new System.IO.IOException($"injected transport failure on rank {inner.Rank}");
                inner.AllReduce(tensor, op);
            }

            public PendingCollective StartAllReduce(Tensor tensor, ReduceOp op = ReduceOp.Sum) => inner.StartAllReduce(tensor, op);

            public Tensor AllGather(Tensor tensor, long dim) => inner.AllGather(tensor, dim);

            public void AllGatherInto(Tensor tensor, Tensor output, long dim) => inner.AllGatherInto(tensor, output, dim);

            public Tensor ReduceScatter(Tensor tensor, long dim, ReduceOp op = ReduceOp.Sum) => inner.ReduceScatter(tensor, dim, op);

            public void ReduceScatterInto(Tensor tensor, Tensor output, long dim, ReduceOp op = ReduceOp.Sum) => inner.ReduceScatterInto(tensor, output, dim, op);

            public void Broadcast(Tensor tensor, int root) => inner.Broadcast(tensor, root);

            public void Barrier() => inner.Barrier();

            public void Send(Tensor tensor, int destination, int tag = 0) => inner.Send(tensor, destination, tag);

            public void Receive(Tensor into, int source, int tag = 0) => inner.Receive(into, source, tag);
        }
    }
}
