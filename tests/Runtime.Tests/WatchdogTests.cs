using System;
using System.Diagnostics;
using System.Threading;
using ModelParallel.Communication;
using TorchSharp;
using Xunit;

namespace ModelParallel.Tests
{
    /// <summary>A rank that stops responding ends the run after the collective timeout, with a report of where each rank was.</summary>
    [Trait("Category", "Faults")]
    public sealed class WatchdogTests
    {
        [Fact]
        public void AStuckRankIsReportedWithWhereEachRankWasNotWaitedForForever()
        {
            using var release = new ManualResetEventSlim();
            var clock = Stopwatch.StartNew();
            var error = Assert.Throws<RankFailedException>(() => Ranks.Run(new MeshShape(tp: 2), context =>
            {
                context.TensorParallel.AllReduce(torch.ones(4)); // both ranks: a first collective in each flight recorder
                if (context.Rank == 1) release.Wait();            // rank 1 stops responding
                context.TensorParallel.AllReduce(torch.ones(4));
            }, new RunOptions { CollectiveTimeout = TimeSpan.FromSeconds(2) }));
            release.Set();
            Assert.True(clock.Elapsed < TimeSpan.FromSeconds(15), $"took {clock.Elapsed}");
            Assert.Equal(0, error.Rank);
            var report = Assert.IsType<CollectiveTimeoutException>(error.InnerException).Message;
            Assert.Contains("Rank 0 waited", report);
            Assert.Contains("in AllReduce #1 of float32[4] (Sum) on the tp group of ranks 0,1 (timeout 2 s, RunOptions.CollectiveTimeout)", report);
            // Where the stuck rank was: its last operation, finished; where the waiting rank was: its history.
            Assert.Contains("Not there: rank 1: AllReduce #0 of float32[4] (Sum) on the tp group of ranks 0,1 (done in", report);
            Assert.Contains("Where rank 0 was: rank 0, last 2 of 2 operations:", report);
            Assert.Contains("AllReduce #1 of float32[4] (Sum) on the tp group of ranks 0,1 (waiting for", report);
            Assert.Contains("rank(s) 1 did not stop within 5 s of the abort and were left running", error.Message);
        }

        [Fact]
        public void AReceiveFromAStuckRankTimesOutNamingTheSender()
        {
            using var release = new ManualResetEventSlim();
            var error = Assert.Throws<RankFailedException>(() => Ranks.Run(new MeshShape(pp: 2), context =>
            {
                if (context.Rank == 1) release.Wait();
                else context.PipelineParallel.Receive(torch.empty(3), source: 1, tag: 7);
            }, new RunOptions { CollectiveTimeout = TimeSpan.FromSeconds(1) }));
            release.Set();
            var report = Assert.IsType<CollectiveTimeoutException>(error.InnerException).Message;
            Assert.Contains("Rank 0 waited", report);
            Assert.Contains("in a receive (tag 7) from rank 1 on the pp group of ranks 0,1", report);
            Assert.Contains("Not there: rank 1: no collective yet", report);
        }
    }
}
