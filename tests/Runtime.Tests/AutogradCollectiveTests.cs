using ModelParallel.Autograd;
using TorchSharp;
using Xunit;

namespace ModelParallel.Tests
{
    /// <summary>Each differentiable collective's forward and its conjugate backward, against hand computations.</summary>
    [Trait("Category", "Runtime")]
    public sealed class AutogradCollectiveTests
    {
        [Fact]
        public void CopyIsIdentityForwardAndAllReduceBackward()
        {
            var results = Ranks.Run(new MeshShape(tp: 2), context =>
            {
                var x = torch.tensor(new float[] { 1, 2 }, requires_grad: true);
                var y = TensorParallel.CopyToTensorParallel(x, context.TensorParallel);
                // Rank r's downstream gradient is (r + 1) * [1, 1]; the input gradient is their sum, 3 * [1, 1].
                (y * (context.Rank + 1)).sum().backward();
                return (y.detach(), x.grad!);
            });
            foreach (var (y, grad) in results)
            {
                TensorAssert.Equal(new double[] { 1, 2 }, y, "f forward");
                TensorAssert.Equal(new double[] { 3, 3 }, grad, "f backward");
            }
        }

        [Fact]
        public void ReduceIsAllReduceForwardAndIdentityBackward()
        {
            var results = Ranks.Run(new MeshShape(tp: 2), context =>
            {
                var x = torch.tensor(new float[] { context.Rank + 1, 10 }, requires_grad: true);
                var y = TensorParallel.ReduceFromTensorParallel(x, context.TensorParallel);
                (y * torch.tensor(new float[] { 2, 3 })).sum().backward();
                return (y.detach(), x.grad!, x.detach());
            });
            foreach (var (y, grad, x) in results)
            {
                TensorAssert.Equal(new double[] { 3, 20 }, y, "g forward");
                TensorAssert.Equal(new double[] { 2, 3 }, grad, "g backward");
            }
            TensorAssert.Equal(new double[] { 1, 10 }, results[0].Item3, "g leaves its input alone");
        }

        [Fact]
        public void GatherAndScatterAreEachOthersConjugates()
        {
            var results = Ranks.Run(new MeshShape(tp: 2), context =>
            {
                var local = torch.tensor(new float[] { 10 * context.Rank, 10 * context.Rank + 1 }, requires_grad: true);
                var gathered = TensorParallel.GatherFromTensorParallel(local, context.TensorParallel, dim: 0);
                (gathered * torch.tensor(new float[] { 1, 2, 3, 4 })).sum().backward();

                var full = torch.tensor(new float[] { 5, 6, 7, 8 }, requires_grad: true);
                var slice = TensorParallel.ScatterToTensorParallel(full, context.TensorParallel, dim: 0);
                (slice * (context.Rank + 1)).sum().backward();
                return (gathered.detach(), local.grad!, slice.detach(), full.grad!);
            });
            TensorAssert.Equal(new double[] { 0, 1, 10, 11 }, results[0].Item1, "all-gather forward");
            TensorAssert.Equal(new double[] { 1, 2 }, results[0].Item2, "all-gather backward, rank 0's slice");
            TensorAssert.Equal(new double[] { 3, 4 }, results[1].Item2, "all-gather backward, rank 1's slice");
            TensorAssert.Equal(new double[] { 5, 6 }, results[0].Item3, "scatter forward, rank 0");
            TensorAssert.Equal(new double[] { 7, 8 }, results[1].Item3, "scatter forward, rank 1");
            // Each rank's slice gradient is (r + 1); gathered: [1, 1, 2, 2] on both ranks.
            foreach (var r in results) TensorAssert.Equal(new double[] { 1, 1, 2, 2 }, r.Item4, "scatter backward");
        }
    }
}
