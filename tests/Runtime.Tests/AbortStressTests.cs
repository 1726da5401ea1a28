using System;
using System.Diagnostics;
using System.Threading;
using TorchSharp;
using Xunit;

namespace ModelParallel.Tests
{
    /// <summary>
    /// The abort path under load: a rank fails while its peers are inside collectives, reading each other's tensors.
    /// The peers unwind (their dispose scopes free their tensors) while others may still read them; that must never
    /// crash the process (it once did, about 1 run in 40: THSTensor_copy_ on a peer's freed tensor).
    /// </summary>
    [Trait("Category", "Faults")]
    public sealed class AbortStressTests
    {
        private const int Runs = 200;

        [Fact]
        public void TwoHundredAbortsWhilePeersAreInCollectivesNeverCrash()
        {
            using var stop = new CancellationTokenSource();
            // CPU load beside the four rank threads on this machine's two cores: the scheduler interleaves them unevenly.
            var load = new Thread(() => { while (!stop.IsCancellationRequested) Thread.SpinWait(1000); }) { IsBackground = true };
            load.Start();
            var clock = Stopwatch.StartNew();
            var random = new Random(20261201);
            for (int run = 0; run < Runs; run++)
            {
                int failing = random.Next(4), after = random.Next(20);
                var error = Assert.Throws<RankFailedException>(() => Ranks.Run(new MeshShape(dp: 2, tp: 2), context =>
                {
                    for (int step = 0; ; step++)
                    {
                        using var scope = torch.NewDisposeScope();
                        if (context.Rank == failing && step == after) throw new InvalidOperationException($"injected failure at step {step}");
                        var x = torch.ones(1 << 18) * (context.Rank + 1);
                        context.TensorParallel.AllReduce(x);
                        context.DataParallel.AllGather(x.narrow(0, 0, 1 << 12).contiguous(), 0);
                        context.TensorParallel.ReduceScatter(x, 0);
                    }
                }));
                Assert.Equal(failing, error.Rank);
                Assert.Contains("injected failure", error.Message);
            }
            stop.Cancel();
            Assert.True(clock.Elapsed < TimeSpan.FromMinutes(2), $"{Runs} aborts took {clock.Elapsed}");
        }
    }
}
