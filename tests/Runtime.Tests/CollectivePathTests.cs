using System;
using System.Linq;
using ModelParallel.Communication;
using TorchSharp;
using Xunit;

namespace ModelParallel.Tests
{
    /// <summary>
    /// The in-process collectives take one of two paths: tensors of at most 64 KiB per rank go through the group's pinned
    /// buffers in one barrier, larger ones through libtorch in two or three. Both are checked here against sums worked
    /// out element by element in rank order, on each side of the boundary, in float32 and float64, and one path right
    /// after the other (the one-barrier path relies on consecutive collectives using different signature slots).
    /// </summary>
    [Trait("Category", "Runtime")]
    public sealed class CollectivePathTests
    {
        private const int FloatsInScratch = 64 * 1024 / 4;

        // Rank r's element i: a value with a fractional part, so that sums in another order would round differently.
        private static double Value(int rank, long i) => (rank + 1) * 0.1 + i % 97 * 1.37 - rank * (i % 5) * 0.01;

        [Theory]
        [InlineData(2, 1024)]
        [InlineData(2, FloatsInScratch)] // the largest float32 tensor of the small path
        [InlineData(2, FloatsInScratch + 1)] // the smallest of the general path
        [InlineData(3, 1000)]
        [InlineData(4, FloatsInScratch + 7)]
        public void AllReduceSumsAveragesAndMaxesInRankOrderOnBothPaths(int ranks, long count)
        {
            var results = Ranks.Run(new MeshShape(tp: ranks), context =>
            {
                var values = Enumerable.Range(0, (int)count).Select(i => (float)Value(context.Rank, i)).ToArray();
                var sum = torch.tensor(values);
                var mean = torch.tensor(values);
                var max = torch.tensor(values);
                var dsum = torch.tensor(values.Select(v => (double)v).ToArray());
                context.TensorParallel.AllReduce(sum);
                context.TensorParallel.AllReduce(mean, ReduceOp.Average);
                context.TensorParallel.AllReduce(max, ReduceOp.Max);
                context.TensorParallel.AllReduce(dsum);
                return (sum.data<float>().ToArray(), mean.data<float>().ToArray(), max.data<float>().ToArray(), dsum.data<double>().ToArray());
            });
            for (long i = 0; i < count; i++)
            {
                float sum = (float)Value(0, i);
                double dsum = (float)Value(0, i);
                float max = sum;
                for (int r = 1; r < ranks; r++)
                {
                    sum += (float)Value(r, i);
                    dsum += (float)Value(r, i);
                    max = Math.Max(max, (float)Value(r, i));
                }
                foreach (var (s, m, x, d) in results)
                {
                    Assert.True(s[i] == sum, $"sum of element {i}: {s[i]} vs {sum}");
                    Assert.True(Math.Abs(m[i] - sum / ranks) <= 1e-6f * Math.Abs(sum), $"mean of element {i}: {m[i]} vs {sum / ranks}");
                    Assert.True(x[i] == max, $"max of element {i}: {x[i]} vs {max}");
                    Assert.True(d[i] == dsum, $"float64 sum of element {i}: {d[i]} vs {dsum}");
                }
            }
            // Every rank holds bitwise the same result.
            foreach (var result in results.Skip(1)) Assert.Equal(results[0].Item3, result.Item3);
        }

        [Fact]
        public void MaxPropagatesNaNAsLibtorchDoes()
        {
            var results = Ranks.Run(new MeshShape(tp: 2), context =>
            {
                var t = torch.tensor(context.Rank == 1 ? new[] { float.NaN, 1f } : new[] { 2f, float.NaN });
                context.TensorParallel.AllReduce(t, ReduceOp.Max);
                return t.data<float>().ToArray();
            });
            foreach (var r in results) Assert.True(float.IsNaN(r[0]) && float.IsNaN(r[1]), $"[{r[0]}, {r[1]}]");
        }

        [Theory]
        [InlineData(2, 100)]
        [InlineData(2, 6000)] // [3, 6000] floats: 72 KB per rank, the general path
        [InlineData(4, 40)]
        public void AllGatherAndReduceScatterAlongTheSecondDimensionOnBothPaths(int ranks, long columns)
        {
            var results = Ranks.Run(new MeshShape(tp: ranks), context =>
            {
                // Element (row, column) of rank r: Value(r, row * columns + column).
                var mine = torch.tensor(Enumerable.Range(0, (int)(3 * columns)).Select(i => (float)Value(context.Rank, i)).ToArray()).view(3, columns);
                var gathered = torch.empty(3, columns * ranks);
                context.TensorParallel.AllGatherInto(mine, gathered, 1);
                var scattered = torch.empty(3, columns / ranks);
                context.TensorParallel.ReduceScatterInto(mine, scattered, 1);
                return (gathered.data<float>().ToArray(), scattered.data<float>().ToArray());
            });
            for (int rank = 0; rank < ranks; rank++)
            {
                var (gathered, scattered) = results[rank];
                for (long row = 0; row < 3; row++)
                {
                    for (int source = 0; source < ranks; source++)
                        for (long c = 0; c < columns; c++)
                            Assert.Equal((float)Value(source, row * columns + c), gathered[row * columns * ranks + source * columns + c]);
                    long part = columns / ranks;
                    for (long c = 0; c < part; c++)
                    {
                        float sum = 0;
                        for (int source = 0; source < ranks; source++) sum = source == 0 ? (float)Value(0, row * columns + rank * part + c) : sum + (float)Value(source, row * columns + rank * part + c);
                        Assert.True(scattered[row * part + c] == sum, $"rank {rank}, row {row}, column {c}: {scattered[row * part + c]} vs {sum}");
                    }
                }
            }
        }

        [Theory]
        [InlineData(16)] // the small path: written through its address
        [InlineData(FloatsInScratch * 2)] // the general path: copy_
        public void AutogradSeesTheCollectiveWriteATensorThatBackwardSaved(long count)
        {
            // x * w saves x for w's gradient; all-reducing x in place afterwards must make backward fail, as any in-place
            // write does, instead of computing w's gradient from the reduced values.
            var errors = Ranks.Run(new MeshShape(tp: 2), context =>
            {
                var x = torch.ones(count);
                var w = torch.ones(count).requires_grad_(true);
                var y = (x * w).sum();
                context.TensorParallel.AllReduce(x);
                return Record.Exception(() => y.backward())?.Message ?? "no error";
            });
            foreach (var error in errors) Assert.Contains("modified by an inplace operation", error);
        }

        [Fact]
        public void AnInferenceTensorReducedOutsideInferenceModeFailsAsAnExceptionNotACrash()
        {
            // An inference tensor has no version counter: libtorch refuses an in-place write to it outside inference mode.
            // The small path records its write through libtorch's own bump_version, which would throw that refusal as a C++
            // exception through a native frame (ending the process); it must come back as a .NET exception instead.
            var failure = Assert.Throws<RankFailedException>(() => Ranks.Run(new MeshShape(tp: 2), context =>
            {
                torch.Tensor frozen;
                using (torch.inference_mode()) frozen = torch.ones(16);
                context.TensorParallel.AllReduce(frozen);
            }));
            Assert.Contains("inference", failure.ToString(), StringComparison.OrdinalIgnoreCase);
        }

        [Fact]
        public void InsideInferenceModeTheSmallPathReducesAnInferenceTensor()
        {
            var sums = Ranks.Run(new MeshShape(tp: 2), context =>
            {
                using var inference = torch.inference_mode();
                var t = torch.full(16, context.Rank + 1f);
                context.TensorParallel.AllReduce(t);
                return t.data<float>().ToArray();
            });
            foreach (var sum in sums) Assert.All(sum, value => Assert.Equal(3f, value));
        }

        [Fact]
        public void BroadcastOfIntegersTakesTheSmallPathToo()
        {
            var results = Ranks.Run(new MeshShape(tp: 3), context =>
            {
                var t = torch.tensor(new long[] { context.Rank * 10 + 1, long.MaxValue - context.Rank });
                context.TensorParallel.Broadcast(t, 2);
                return t.data<long>().ToArray();
            });
            foreach (var r in results) Assert.Equal(new[] { 21L, long.MaxValue - 2 }, r);
        }

        [Fact]
        public void SmallAndLargeCollectivesInAnyOrderEachSeeTheirOwnStep()
        {
            // 300 collectives of one and of three barriers in a seeded order, each with values of its own step: a rank
            // that read a peer's buffer or signature of another step would see another step's numbers, or a mismatch.
            var results = Ranks.Run(new MeshShape(tp: 2), context =>
            {
                var order = new Random(5);
                var wrong = 0;
                for (int step = 0; step < 300; step++)
                {
                    long count = order.Next(3) == 0 ? FloatsInScratch * 2 : order.Next(1, 64);
                    var t = torch.full(count, (float)(step * 2 + context.Rank));
                    if (order.Next(4) == 0) context.TensorParallel.Barrier();
                    context.TensorParallel.AllReduce(t);
                    if (t.data<float>().Any(v => v != step * 4 + 1)) wrong++;
                }
                return wrong;
            });
            Assert.Equal(new[] { 0, 0 }, results);
        }
    }
}
