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
    /// A collective that fails inside backward cannot throw through TorchSharp's native autograd engine; the failure is
    /// deferred. It must still surface as the original error, and the failed step's state must not be passed off as good.
    /// </summary>
    [Trait("Category", "Runtime")]
    public sealed class DeferredFailureTests
    {
        private static readonly ModelShape Shape = new(Features: 8, Width: 16, Hidden: 32, Outputs: 4, Depth: 1, Bias: true);

        [Fact]
        public void ExportAfterAFailedBackwardThrowsTheOriginalFailure()
        {
            var error = Assert.Throws<RankFailedException>(() => Ranks.Run(new MeshShape(tp: 2), context =>
            {
                var model = new TestModel(Shape);
                var loss = nn.functional.mse_loss(model.forward(torch.ones(3, Shape.Features)), torch.zeros(3, Shape.Outputs));
                FailingCommunicator.Of(context).FailNext = true; // the next collective is backward's all-reduce (f)
                loss.backward();                                // returns: the failure is deferred, the gradient is zeros
                LogicalState.Export(model);                     // must not export the failed step
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
                loss.backward();
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
