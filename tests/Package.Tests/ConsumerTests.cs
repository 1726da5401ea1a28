using System;
using System.Globalization;
using System.IO;
using System.Linq;
using System.Text.RegularExpressions;
using Xunit;

namespace ModelParallel.Tests
{
    /// <summary>
    /// A fresh <c>dotnet new console</c> project (ImplicitUsings and Nullable on) that references only the packed
    /// package: the README's "Use it in your project", step by step.
    /// </summary>
    [Collection(PackageCollection.Name)]
    [Trait("Category", "Package")]
    public sealed class ConsumerTests
    {
        private readonly PackageFeed feed;

        public ConsumerTests(PackageFeed feed) => this.feed = feed;

        [Fact]
        public void AConsoleProjectWithOnlyThePackagePartitionsOnThreadsAndUnderMpiexec()
        {
            var project = feed.NewConsumer("Consumer");
            Assert.DoesNotContain("ProjectReference", File.ReadAllText(Path.Combine(project, "Consumer.csproj")));
            Assert.Contains("<ImplicitUsings>enable</ImplicitUsings>", File.ReadAllText(Path.Combine(project, "Consumer.csproj")));
            CopySources(project, "Model.cs", "Program.cs");

            var build = PackageFeed.Expect(Command.Run("dotnet", "build -c Release", project, PackageFeed.Limit), "dotnet build");
            Assert.Matches(@"\b0 Warning\(s\)", build.Output);
            var report = Path.Combine(project, "bin", "Release", "net10.0", "partition-reports", "Consumer.TwoLayerMlp.md");
            Assert.True(File.Exists(report), $"no partition report at {report}:\n{build}");
            Assert.Contains("fc1", File.ReadAllText(report));

            var dll = Path.Combine(project, "bin", "Release", "net10.0", "Consumer.dll");
            var threads = PackageFeed.Expect(Command.Run("dotnet", $"\"{dll}\" 2", project, PackageFeed.Limit), "the consumer at tp=2");
            AssertPartitionedAndEqualToOneDevice(threads.Output, ranks: new[] { 0, 1 });

            var mpi = PackageFeed.Expect(Command.Run("mpiexec", $"-n 2 dotnet \"{dll}\" 2", project, PackageFeed.Limit), "the consumer under mpiexec -n 2");
            AssertPartitionedAndEqualToOneDevice(mpi.Output, ranks: new[] { 0, 1 });
        }

        [Fact]
        public void ANonPartialParallelModuleFailsTheBuildWithMP0001AndTheCodeFixRepairsIt()
        {
            var project = feed.NewConsumer("NotPartial");
            CopySources(project, "Model.cs", "Program.cs");
            var model = Path.Combine(project, "Model.cs");
            File.WriteAllText(model, File.ReadAllText(model).Replace("public sealed partial class", "public sealed class"));

            var build = Command.Run("dotnet", "build -c Release", project, PackageFeed.Limit);
            Assert.NotEqual(0, build.ExitCode);
            var error = Regex.Match(build.Output, @"Model\.cs\(9,\d+\): error MP0001: .*\((file://[^)]+)\)");
            Assert.True(error.Success, build.ToString());
            // The help link opens the page the package shipped, on this machine.
            var page = new Uri(error.Groups[1].Value).LocalPath;
            Assert.EndsWith("/docs/diagnostics/MP0001.md", page);
            Assert.StartsWith(Path.Combine(feed.Root, "packages"), page);
            Assert.Contains("# MP0001", File.ReadAllText(page));

            // The documented way to apply the code fix outside an IDE: the package's MakePartial fix, from the command line.
            PackageFeed.Expect(Command.Run("dotnet", "format analyzers --diagnostics MP0001", project, PackageFeed.Limit), "dotnet format analyzers");
            Assert.Contains("public sealed partial class TwoLayerMlp", File.ReadAllText(model));
            var fixedBuild = PackageFeed.Expect(Command.Run("dotnet", "build -c Release", project, PackageFeed.Limit), "dotnet build after the fix");
            Assert.Matches(@"\b0 Warning\(s\)", fixedBuild.Output);
        }

        [Fact]
        public void AProjectThatSetsItsOwnInterceptorNamespacesStillBuilds()
        {
            var project = feed.NewConsumer("OwnInterceptors");
            CopySources(project, "Model.cs", "Program.cs");
            var csproj = Path.Combine(project, "OwnInterceptors.csproj");
            // Assigned without $(InterceptorsNamespaces): the package's targets append theirs after the project's.
            File.WriteAllText(csproj, File.ReadAllText(csproj).Replace("<Nullable>enable</Nullable>",
                "<Nullable>enable</Nullable>\n    <InterceptorsNamespaces>OwnInterceptors.Generated</InterceptorsNamespaces>"));

            var build = PackageFeed.Expect(Command.Run("dotnet", "build -c Release", project, PackageFeed.Limit), "dotnet build");
            Assert.Matches(@"\b0 Warning\(s\)", build.Output);
        }

        private static void CopySources(string project, params string[] files)
        {
            foreach (var file in files)
                File.Copy(Path.Combine(AppContext.BaseDirectory, "Consumers", file), Path.Combine(project, file), overwrite: true);
        }

        /// <summary>Every rank holds half of each sharded tensor, and each rank's loss curve equals one device's (relative 1e-5).</summary>
        private static void AssertPartitionedAndEqualToOneDevice(string output, int[] ranks)
        {
            foreach (var rank in ranks)
            {
                Assert.Contains($"rank {rank}: fc1.weight [16, 8]", output);  // ColumnParallel: out_features 32 / tp
                Assert.Contains($"rank {rank}: fc1.bias [16]", output);
                Assert.Contains($"rank {rank}: fc2.weight [8, 16]", output);  // RowParallel: in_features 32 / tp
                Assert.Contains($"rank {rank}: fc2.bias [8]", output);        // replicated, added once
            }
            var curves = Regex.Matches(output, @"^losses (.+) one device (.+)$", RegexOptions.Multiline);
            Assert.True(curves.Count >= 1, output);
            foreach (Match curve in curves)
            {
                var parallel = Parse(curve.Groups[1].Value);
                var single = Parse(curve.Groups[2].Value);
                Assert.Equal(3, single.Length);
                Assert.Equal(single.Length, parallel.Length);
                for (int i = 0; i < single.Length; i++)
                    Assert.True(Math.Abs(parallel[i] - single[i]) <= 1e-5 * Math.Abs(single[i]), $"step {i + 1}: {parallel[i]} vs one device {single[i]}\n{output}");
            }
        }

        private static double[] Parse(string values) =>
            values.Trim().Split(' ').Select(v => double.Parse(v, CultureInfo.InvariantCulture)).ToArray();
    }
}
