using System.Linq;
using ModelParallel.Communication;
using TorchSharp;
using Xunit;

namespace ModelParallel.Tests
{
    /// <summary>The in-process collectives against hand-computed results for 1 to 4 ranks.</summary>
    [Trait("Category", "Runtime")]
    public sealed class CollectiveTests
    {
        // Rank r contributes [r+1, 10(r+1), 100(r+1)]; the sums below are worked out by hand.
        private static torch.Tensor Contribution(int rank) => torch.tensor(new float[] { rank + 1, 10 * (rank + 1), 100 * (rank + 1) });

        [Theory]
        [InlineData(1, new double[] { 1, 10, 100 })]
        [InlineData(2, new double[] { 3, 30, 300 })]
        [InlineData(3, new double[] { 6, 60, 600 })]
        [InlineData(4, new double[] { 10, 100, 1000 })]
        public void AllReduceSums(int ranks, double[] expected)
        {
            var results = Ranks.Run(new MeshShape(tp: ranks), context =>
            {
                var t = Contribution(context.Rank);
                context.TensorParallel.AllReduce(t);
                return t;
            });
            foreach (var result in results) TensorAssert.Equal(expected, result, "all-reduce sum");
        }

        [Fact]
        public void AllReduceAveragesAndMaxes()
        {
            var results = Ranks.Run(new MeshShape(tp: 4), context =>
            {
                var mean = Contribution(context.Rank);
                context.TensorParallel.AllReduce(mean, ReduceOp.Average);
                var max = torch.tensor(new float[] { context.Rank, -context.Rank });
                context.TensorParallel.AllReduce(max, ReduceOp.Max);
                return (mean, max);
            });
            foreach (var (mean, max) in results)
            {
                TensorAssert.Equal(new double[] { 2.5, 25, 250 }, mean, "average");
                TensorAssert.Equal(new double[] { 3, 0 }, max, "max");
            }
        }

        [Fact]
        public void AllReduceWritesBackIntoANonContiguousView()
        {
            var results = Ranks.Run(new MeshShape(tp: 2), context =>
            {
                // A 2x3 tensor and its transposed (non-contiguous) view; the reduction must land in the original.
                var storage = torch.arange(6, dtype: torch.float32).reshape(2, 3) * (context.Rank + 1);
                var view = storage.t();
                Assert.False(view.is_contiguous());
                context.TensorParallel.AllReduce(view);
                return storage;
            });
            // arange(6) * 1 + arange(6) * 2 = 3 * arange(6)
            foreach (var s in results) TensorAssert.Equal(new double[] { 0, 3, 6, 9, 12, 15 }, s, "non-contiguous all-reduce");
        }

        [Fact]
        public void AllReduceOfMoreRanksThanElements()
        {
            var results = Ranks.Run(new MeshShape(tp: 4), context =>
            {
                var t = torch.tensor(new long[] { context.Rank, 1 });
                context.TensorParallel.AllReduce(t);
                return t;
            });
            foreach (var r in results) TensorAssert.Equal(new double[] { 6, 4 }, r, "int64 all-reduce");
        }

        [Theory]
        [InlineData(1)]
        [InlineData(2)]
        [InlineData(3)]
        [InlineData(4)]
        public void AllGatherConcatenatesInRankOrder(int ranks)
        {
            var results = Ranks.Run(new MeshShape(tp: ranks), context =>
                context.TensorParallel.AllGather(torch.full(new long[] { 2, 1 }, context.Rank, torch.float32), dim: -1));
            var expected = Enumerable.Range(0, 2).SelectMany(_ => Enumerable.Range(0, ranks).Select(r => (double)r)).ToArray();
            foreach (var r in results)
            {
                Assert.Equal(new long[] { 2, ranks }, r.shape);
                TensorAssert.Equal(expected, r, "all-gather");
            }
        }

        [Theory]
        [InlineData(1)]
        [InlineData(2)]
        [InlineData(4)]
        public void ReduceScatterGivesEachRankItsSliceOfTheSum(int ranks)
        {
            var results = Ranks.Run(new MeshShape(tp: ranks), context =>
                // Rank r contributes (r + 1) * [0, 1, ..., 4 * ranks - 1].
                context.TensorParallel.ReduceScatter(torch.arange(4 * ranks, dtype: torch.float32) * (context.Rank + 1), dim: 0));
            double factor = ranks * (ranks + 1) / 2.0;
            for (int r = 0; r < ranks; r++)
                TensorAssert.Equal(Enumerable.Range(4 * r, 4).Select(i => i * factor).ToArray(), results[r], $"reduce-scatter rank {r}");
        }

        [Fact]
        public void IntoVariantsWriteTheCallersTensorAndRejectAWrongShape()
        {
            var results = Ranks.Run(new MeshShape(tp: 2), context =>
            {
                var c = context.TensorParallel;
                var gathered = torch.empty(2, 2);
                c.AllGatherInto(torch.full(new long[] { 2, 1 }, context.Rank + 1, torch.float32), gathered, 1);
                var scattered = torch.empty(1, 2);
                c.ReduceScatterInto(torch.ones(2, 2) * (context.Rank + 1), scattered, 0);
                var error = Assert.Throws<System.ArgumentException>(() => c.AllGatherInto(torch.ones(2), torch.empty(3), 0));
                return (gathered, scattered, error.Message);
            });
            foreach (var (gathered, scattered, message) in results)
            {
                TensorAssert.Equal(new double[] { 1, 2, 1, 2 }, gathered, "all-gather into, dim 1");
                TensorAssert.Equal(new double[] { 3, 3 }, scattered, "reduce-scatter into, dim 0");
                Assert.Contains("the output is float32[3], expected float32[4]", message);
            }
        }

        [Fact]
        public void BroadcastCopiesTheRootsTensor()
        {
            var results = Ranks.Run(new MeshShape(tp: 3), context =>
            {
                var t = torch.full(new long[] { 3 }, context.Rank * 7, torch.float32);
                context.TensorParallel.Broadcast(t, root: 2);
                return t;
            });
            foreach (var r in results) TensorAssert.Equal(new double[] { 14, 14, 14 }, r, "broadcast");
        }

        [Fact]
        public void SendAndReceivePassAroundARing()
        {
            var results = Ranks.Run(new MeshShape(tp: 4), context =>
            {
                var c = context.TensorParallel;
                c.Send(torch.full(new long[] { 2 }, 100 + c.Rank, torch.float32), (c.Rank + 1) % c.Size, tag: 5);
                var into = torch.zeros(2);
                c.Receive(into, (c.Rank + c.Size - 1) % c.Size, tag: 5);
                c.Barrier();
                return into;
            });
            for (int r = 0; r < 4; r++)
                TensorAssert.Equal(new double[] { 100 + (r + 3) % 4, 100 + (r + 3) % 4 }, results[r], $"ring rank {r}");
        }

        [Fact]
        public void CountingCommunicatorCountsCallsAndElements()
        {
            var counts = Ranks.Run(new MeshShape(tp: 2), context =>
            {
                var counting = (CountingCommunicator)context.TensorParallel;
                counting.AllReduce(torch.ones(5));
                counting.AllReduce(torch.ones(3));
                counting.AllGather(torch.ones(4), 0);
                return (counting.Calls(CollectiveKind.AllReduce), counting.Elements(CollectiveKind.AllReduce), counting.Calls(CollectiveKind.AllGather), counting.TotalCalls);
            }, new RunOptions { WrapCommunicator = (_, c) => new CountingCommunicator(c) });
            Assert.All(counts, c => Assert.Equal((2, 8L, 1, 3), c));
        }
    }
}
