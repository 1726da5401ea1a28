using System;
using System.Linq;
using Xunit;

namespace ModelParallel.Tests
{
    /// <summary>Real mpiexec jobs of 2 and 4 processes (MPICH through MPI.NET).</summary>
    [Trait("Category", "Mpi")]
    public sealed class MpiTests
    {
        [Theory]
        [InlineData(2)]
        [InlineData(4)]
        public void CollectivesMatchHandComputedResults(int processes)
        {
            var job = MpiJob.Run(processes, "collectives");
            Assert.True(job.ExitCode == 0, job.Output);
            Assert.Contains($"collectives ok on {processes} processes", job.Output);
        }

        [Theory]
        [InlineData(1, 2)]
        [InlineData(1, 4)]
        [InlineData(2, 1)]
        [InlineData(2, 2)]
        public void TrainingOnTheMeshMatchesOneDevice(int dp, int tp)
        {
            var job = MpiJob.Run(dp * tp, $"equivalence {dp} {tp}");
            Assert.True(job.ExitCode == 0, job.Output);
            Assert.Contains($"equivalence ok on mesh dp={dp} × pp=1 × tp={tp}", job.Output);
        }

        [Fact]
        public void GradientsFromOutsideTheTapsAreAveragedToo()
        {
            var job = MpiJob.Run(2, "uses 2");
            Assert.True(job.ExitCode == 0, job.Output);
            Assert.Contains("uses outside the taps ok on dp=2", job.Output);
        }

        [Fact]
        public void ReplicasWhoseForwardsDifferIssueTheirAllReducesInOneOrder()
        {
            var job = MpiJob.Run(2, "control-flow");
            Assert.True(job.ExitCode == 0, job.Output);
            Assert.Contains("replicas with different forwards ok on dp=2", job.Output);
        }

        [Theory]
        [InlineData(1, 2)]
        [InlineData(2, 2)]
        public void SequenceParallelTrainingOnTheMeshMatchesOneDevice(int dp, int tp)
        {
            var job = MpiJob.Run(dp * tp, $"sequence {dp} {tp}");
            Assert.True(job.ExitCode == 0, job.Output);
            Assert.Contains($"sequence-parallel equivalence ok on mesh dp={dp} × pp=1 × tp={tp}", job.Output);
        }

        [Theory]
        [Trait("Category", "Pipeline")]
        [InlineData(1, 2, 1, "gpipe", 4)]
        [InlineData(1, 4, 1, "1f1b", 8)]
        [InlineData(1, 2, 1, "interleaved", 4)]
        [InlineData(1, 2, 2, "1f1b", 4)]
        [InlineData(2, 2, 1, "1f1b", 4)]
        public void APipelineOfProcessesMatchesOneDevice(int dp, int pp, int tp, string schedule, int microbatches)
        {
            var job = MpiJob.Run(dp * pp * tp, $"pipeline {dp} {pp} {tp} {schedule} {microbatches}");
            Assert.True(job.ExitCode == 0, job.Output);
            Assert.Contains($"pipeline equivalence ok on mesh dp={dp} × pp={pp} × tp={tp} ({schedule}, m={microbatches})", job.Output);
        }

        [Fact]
        public void ARankThatThrowsAbortsTheJobAndIsNamed()
        {
            var job = MpiJob.Run(2, "fail");
            Assert.NotEqual(0, job.ExitCode);
            Assert.True(job.Elapsed < TimeSpan.FromSeconds(30), $"took {job.Elapsed}");
            Assert.Contains("ModelParallel: rank 1 of 2", job.Output);
            Assert.Contains("boom from rank 1", job.Output);
        }

        [Fact]
        public void ASizeTheMeshDoesNotDivideIsOneLinePerRankAndExitCodeTwo()
        {
            var job = MpiJob.Run(2, "indivisible");
            Assert.Equal(2, job.ExitCode);
            Assert.Contains("failed: PartitionException: Layer 'ModelParallel.Tests.Models.TestBlock.up' (ColumnParallel): out_features = 9 is not divisible by tp = 2 (mesh dp=1 × pp=1 × tp=2).", job.Output);
            Assert.DoesNotContain("   at ", job.Output);
        }

        [Theory]
        [InlineData(2, "operation", "rank 0: AllReduce #0 of float32[4] (Sum); rank 1: AllGather #0 of float32[4] (dim 0)")]
        [InlineData(2, "shape", "rank 0: AllReduce #0 of float32[4] (Sum); rank 1: AllReduce #0 of float32[5] (Sum)")]
        [InlineData(2, "skip", "rank 0: AllReduce #0 of float32[3, 8] (Sum) at 'ModelParallel.Tests.Models.TestBlock.down #1'; rank 1: AllReduce #0 of float32[3, 8] (Sum) at 'ModelParallel.Tests.Models.TestBlock.down #3'")]
        [InlineData(2, "null", "rank 1 of 2 (mesh dp=1 × pp=1 × tp=2, coordinates MeshCoordinates { Dp = 0, Pp = 0, Tp = 1 }) failed: NullReferenceException: Object reference not set to an instance of an object.")]
        [InlineData(2, "early", "rank 0: AllReduce #0 of float32[4] (Sum); rank 1: finished its body")]
        [InlineData(2, "receive-longer", "receives float32[8] (32 bytes) from rank 0 (tag 0), but the message has 16 bytes")]
        [InlineData(2, "receive-shorter", "receives float32[4] (16 bytes) from rank 0 (tag 0), but the message is longer")]
        [InlineData(2, "receive-after-departure", "Rank 0 of the tp communicator waits for a receive (tag 0) from rank 1, but rank 1 has finished its body after sending it 1 message(s), all received")]
        [InlineData(4, "receive-after-departure", "Rank 0 of the tp communicator waits for a receive (tag 0) from rank 1, but rank 1 has finished its body after sending it 1 message(s), all received")]
        [InlineData(4, "operation", "rank 0: AllReduce #0 of float32[4] (Sum); rank 1: AllGather #0 of float32[4] (dim 0)")]
        [InlineData(4, "skip", "rank 0: AllReduce #0 of float32[3, 8] (Sum) at 'ModelParallel.Tests.Models.TestBlock.down #1'; rank 1: AllReduce #0 of float32[3, 8] (Sum) at 'ModelParallel.Tests.Models.TestBlock.down #3'")]
        [InlineData(4, "early", "rank 0: AllReduce #0 of float32[4] (Sum); rank 1: finished its body")]
        public void AFaultOfOneRankEndsTheJobNamingIt(int processes, string fault, string expected)
        {
            var job = MpiJob.Run(processes, $"fault {fault}");
            Assert.True(job.ExitCode != 0, $"exit code 0 after a '{fault}' fault:\n{job.Output}");
            Assert.True(job.Elapsed < TimeSpan.FromSeconds(20), $"took {job.Elapsed}");
            Assert.Contains("ModelParallel: rank ", job.Output);
            Assert.Contains(expected, job.Output);
        }

        [Theory]
        [InlineData(2, "throw-in-forward", "InvalidOperationException: injected fault in forward on rank 1")]
        [InlineData(2, "throw-after-backward", "InvalidOperationException: injected fault after backward on rank 1")]
        [InlineData(2, "extra-collective", "CollectiveMismatchException")]
        [InlineData(4, "throw-after-backward", "InvalidOperationException: injected fault after backward on rank 1")]
        [InlineData(4, "extra-collective", "CollectiveMismatchException")]
        public void AFaultInATrainingStepEndsTheJobBeforeAnyRankCompletesTheStep(int processes, string fault, string expected)
        {
            var job = MpiJob.Run(processes, $"training-fault {fault}");
            Assert.True(job.ExitCode != 0, $"exit code 0 after a '{fault}' fault:\n{job.Output}");
            Assert.True(job.Elapsed < TimeSpan.FromSeconds(20), $"took {job.Elapsed}");
            Assert.Contains(expected, job.Output);
            for (int rank = 0; rank < processes; rank++) Assert.Contains($"rank {rank} stepped 0", job.Output);
            // The failed step changed no rank's parameters or optimizer state: no rank got past its optimizer.step().
            Assert.DoesNotContain("stepped 1", job.Output);
        }

        [Theory]
        [InlineData(2)]
        [InlineData(4)]
        public void MessagesOfASenderThatHasEndedItsBodyStillArrive(int processes)
        {
            var job = MpiJob.Run(processes, "departed-sender");
            Assert.True(job.ExitCode == 0, job.Output);
            Assert.Contains("departed sender delivered", job.Output);
        }

        [Fact]
        public void AStoppedProcessIsCaughtByTheWatchdogAndTheJobEnds()
        {
            var job = MpiJob.Run(2, "stall");
            Assert.True(job.ExitCode != 0, job.Output);
            Assert.True(job.Elapsed < TimeSpan.FromSeconds(30), $"took {job.Elapsed}");
            Assert.Contains("Rank 0 waited", job.Output);
            Assert.Contains("in AllReduce #1 on the tp communicator (timeout 3 s, RunOptions.CollectiveTimeout)", job.Output);
            Assert.Contains("Where rank 0 was: rank 0, last 2 of 2 operations:", job.Output);
            // The stopped process is gone too: MPI_Abort's kill reaches a stopped process (within moments of mpiexec's exit).
            var survivors = Survivors("ModelParallel.Mpi.Host.dll\0stall");
            for (var clock = System.Diagnostics.Stopwatch.StartNew(); survivors.Count > 0 && clock.Elapsed < TimeSpan.FromSeconds(5); survivors = Survivors("ModelParallel.Mpi.Host.dll\0stall"))
                System.Threading.Thread.Sleep(100);
            Assert.True(survivors.Count == 0, $"processes left: {string.Join(", ", survivors)}");
        }

        [Fact]
        public void AUserAutogradFunctionThatThrowsInBackwardIsReportedWithItsRankOnThreadsAndUnderMpi()
        {
            const string line = "ModelParallel: rank 1 of 2 (mesh dp=1 × pp=1 × tp=2, coordinates MeshCoordinates { Dp = 0, Pp = 0, Tp = 1 }) failed where the process cannot recover";
            var threads = MpiJob.RunThreads("user-backward");
            Assert.True(threads.ExitCode != 0, threads.Output);
            Assert.Contains(line, threads.Output);
            Assert.Contains("InvalidOperationException: the user's backward failed on purpose", threads.Output);

            var mpi = MpiJob.Run(2, "user-backward");
            Assert.True(mpi.ExitCode != 0, mpi.Output);
            Assert.Contains(line, mpi.Output);
            Assert.DoesNotContain("BAD TERMINATION", mpi.Output);
        }

        /// <summary>The /proc entries of processes whose command line contains <paramref name="marker"/>.</summary>
        private static System.Collections.Generic.List<string> Survivors(string marker) =>
            System.IO.Directory.GetDirectories("/proc").Select(d => System.IO.Path.Combine(d, "cmdline"))
                .Where(f =>
                {
                    try
                    {
                        return System.IO.File.ReadAllText(f).Contains(marker);
                    }
                    catch (Exception e) when (e is System.IO.IOException or UnauthorizedAccessException)
                    {
                        return false; // the process ended while we looked
                    }
                })
                .ToList();

        [Fact]
        public void ACollectiveThatOverwritesATensorBackwardSavedMakesBackwardRefuseUnderMpiAndThreads()
        {
            // MPI writes tensor storage through its address; autograd must still learn of the write (VersionCounter).
            foreach (var job in new[] { MpiJob.Run(2, "saved-then-written"), MpiJob.RunThreads("saved-then-written") })
            {
                Assert.True(job.ExitCode == 0, job.Output);
                foreach (var name in new[] { "all-reduce", "started all-reduce", "all-gather", "reduce-scatter", "broadcast", "receive" })
                    Assert.Contains($"{name}: refused", job.Output);
                Assert.DoesNotContain("NOT REFUSED", job.Output);
            }
        }

        [Fact]
        public void AMissingMpiLibraryIsAOneLineErrorNamingThePackage()
        {
            var job = MpiJob.Run(2, "collectives", environment: "MODELPARALLEL_MPI_LIBRARY libmpich-not-here.so.12");
            Assert.NotEqual(0, job.ExitCode);
            Assert.Contains("ModelParallel: MPI library 'libmpich-not-here.so.12' not found: install MPICH (apt-get install -y mpich libmpich-dev)", job.Output);
            Assert.DoesNotContain("   at ", job.Output);
        }

        [Fact]
        public void AMeshThatDoesNotMatchTheProcessCountFailsBeforeAnyWork()
        {
            var job = MpiJob.Run(2, "mismatch");
            Assert.True(job.ExitCode == 2, $"exit code {job.ExitCode}, output: {job.Output}");
            // One line, from rank 0, and no abort: every process agreed on the refusal and exited by itself.
            Assert.Equal(1, job.Output.Split('\n').Count(line => line.Contains("needs 3 ranks, but mpiexec started 2 processes.")));
            Assert.DoesNotContain("MPI_Abort", job.Output);
        }
    }
}
