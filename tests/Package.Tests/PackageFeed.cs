using System;
using System.IO;
using System.Linq;
using Xunit;

namespace ModelParallel.Tests
{
    /// <summary>
    /// The ModelParallel package packed once into a local feed, and a folder where consumer projects are made with
    /// <c>dotnet new console</c>. Consumers restore into their own packages folder (so each run gets the package just
    /// packed, never a cached one of the same version) and fall back to the machine's NuGet cache for TorchSharp.
    /// </summary>
    public sealed class PackageFeed : IDisposable
    {
        public static readonly TimeSpan Limit = TimeSpan.FromMinutes(5);

        private readonly string artifacts;

        public PackageFeed()
        {
            Repository = FindRepository();
            Root = Path.Combine(Path.GetTempPath(), "modelparallel-package-" + Guid.NewGuid().ToString("N")[..8]);
            Feed = Path.Combine(Root, "feed");
            Directory.CreateDirectory(Feed);
            // Built apart from the repository's own bin/obj, but inside the repository: ContinuousIntegrationBuild maps
            // paths under it to /_/, so no path of this machine ends up in the assemblies.
            artifacts = Path.Combine(Repository, "artifacts", "package-tests", Path.GetFileName(Root));
            var pack = Command.Run("dotnet",
                $"pack \"{Path.Combine(Repository, "src", "Package")}\" -c Release -o \"{Feed}\" --artifacts-path \"{artifacts}\" -p:ContinuousIntegrationBuild=true -nologo",
                Repository, Limit);
            if (pack.ExitCode != 0) throw new InvalidOperationException($"dotnet pack failed:\n{pack}");
            Package = Directory.GetFiles(Feed, "ModelParallel.*.nupkg").Single();
            Version = Path.GetFileNameWithoutExtension(Package)["ModelParallel.".Length..];
            var cache = Environment.GetEnvironmentVariable("NUGET_PACKAGES")
                ?? Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".nuget", "packages");
            // Above every consumer, so each `dotnet new console` project finds it; the packages folder is outside the
            // consumers' own folders, or their default globs would compile the package's build/*.cs task sources.
            File.WriteAllText(Path.Combine(Root, "nuget.config"), $"""
                <?xml version="1.0" encoding="utf-8"?>
                <configuration>
                  <config>
                    <add key="globalPackagesFolder" value="{Path.Combine(Root, "packages")}" />
                  </config>
                  <packageSources>
                    <add key="local" value="{Feed}" />
                  </packageSources>
                  <fallbackPackageFolders>
                    <add key="machine" value="{cache}" />
                  </fallbackPackageFolders>
                </configuration>
                """);
        }

        public string Repository { get; }

        public string Root { get; }

        public string Feed { get; }

        public string Package { get; }

        public string Version { get; }

        /// <summary>A new console project, exactly as <c>dotnet new console</c> makes it, with the package added.</summary>
        public string NewConsumer(string name)
        {
            var directory = Path.Combine(Root, name);
            Expect(Command.Run("dotnet", $"new console -n {name} -o \"{directory}\"", Root, Limit), "dotnet new console");
            Expect(Command.Run("dotnet", $"add package ModelParallel --version {Version}", directory, Limit), "dotnet add package");
            return directory;
        }

        internal static Command.Outcome Expect(Command.Outcome outcome, string what)
        {
            if (outcome.ExitCode != 0) throw new InvalidOperationException($"{what} failed:\n{outcome}");
            return outcome;
        }

        public void Dispose()
        {
            foreach (var directory in new[] { Root, artifacts })
            {
                try
                {
                    Directory.Delete(directory, recursive: true);
                }
                catch (IOException)
                {
                    // A consumer process may still hold a file; the next run uses new folders.
                }
            }
        }

        private static string FindRepository()
        {
            for (var directory = new DirectoryInfo(AppContext.BaseDirectory); directory is not null; directory = directory.Parent)
                if (File.Exists(Path.Combine(directory.FullName, "Dsl.sln"))) return directory.FullName;
            throw new InvalidOperationException($"No Dsl.sln above {AppContext.BaseDirectory}.");
        }
    }

    [CollectionDefinition(Name)]
    public sealed class PackageCollection : ICollectionFixture<PackageFeed>
    {
        public const string Name = "Package";
    }
}
