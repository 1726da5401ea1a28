using System;
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
            Assert.NotEqual(0, job.ExitCode);
            Assert.Contains("needs 3 ranks, but mpiexec started 2 processes", job.Output);
        }
    }
}
