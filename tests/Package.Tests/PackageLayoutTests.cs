using System;
using System.IO;
using System.IO.Compression;
using System.Linq;
using System.Text;
using Xunit;

namespace ModelParallel.Tests
{
    /// <summary>What the packed .nupkg holds, where NuGet and the compiler look for it, and nothing of this machine.</summary>
    [Collection(PackageCollection.Name)]
    [Trait("Category", "Package")]
    public sealed class PackageLayoutTests
    {
        private readonly PackageFeed feed;

        public PackageLayoutTests(PackageFeed feed) => this.feed = feed;

        [Fact]
        public void EachPartSitsWhereNuGetAndTheCompilerLookForIt()
        {
            using var package = ZipFile.OpenRead(feed.Package);
            var entries = package.Entries.Select(e => e.FullName).ToHashSet();
            foreach (var expected in new[]
            {
                "lib/net10.0/ModelParallel.Dsl.dll", "lib/net10.0/ModelParallel.Dsl.xml",
                "lib/net10.0/ModelParallel.Runtime.dll", "lib/net10.0/ModelParallel.Runtime.xml",
                "analyzers/dotnet/cs/ModelParallel.Generators.dll", "analyzers/dotnet/cs/ModelParallel.CodeFixes.dll",
                "build/ModelParallel.props", "build/ModelParallel.targets",
                "buildTransitive/ModelParallel.props", "buildTransitive/ModelParallel.targets",
                "build/TorchSharpNativeFix.targets", "build/PartitionReports.targets",
                "docs/diagnostics/MP0001.md", "README.md", "LICENSE", "CHANGELOG.md",
            })
                Assert.Contains(expected, entries);
            Assert.DoesNotContain(entries, e => e.StartsWith("lib/", StringComparison.Ordinal) && e.Contains("Generators", StringComparison.Ordinal));
            var nuspec = Read(package, "ModelParallel.nuspec");
            Assert.Contains("<license type=\"file\">LICENSE</license>", nuspec);
            Assert.Contains("<dependency id=\"TorchSharp\"", nuspec);
            Assert.DoesNotContain("ModelParallel.Dsl\"", nuspec); // packed inside, not a dependency on an unpublished package
            Assert.StartsWith("0.", feed.Version);
        }

        [Fact]
        public void NoPathOfThisMachineIsInsideThePackage()
        {
            var home = Environment.GetFolderPath(Environment.SpecialFolder.UserProfile);
            using var package = ZipFile.OpenRead(feed.Package);
            foreach (var entry in package.Entries)
            {
                using var stream = entry.Open();
                using var memory = new MemoryStream();
                stream.CopyTo(memory);
                // Assemblies hold paths as UTF-8 (the PDB path) and UTF-16; look for both.
                foreach (var text in new[] { Encoding.UTF8.GetString(memory.ToArray()), Encoding.Unicode.GetString(memory.ToArray()) })
                {
                    Assert.False(text.Contains(feed.Repository, StringComparison.Ordinal), $"{entry.FullName} contains the repository path {feed.Repository}");
                    Assert.False(text.Contains(feed.Root, StringComparison.Ordinal), $"{entry.FullName} contains the build path {feed.Root}");
                    Assert.False(text.Contains(home + "/", StringComparison.Ordinal), $"{entry.FullName} contains the home path {home}");
                }
            }
        }

        private static string Read(ZipArchive package, string name)
        {
            using var reader = new StreamReader(package.GetEntry(name)!.Open());
            return reader.ReadToEnd();
        }
    }
}
