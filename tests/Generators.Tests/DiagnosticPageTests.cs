using System;
using System.IO;
using Xunit;

namespace ModelParallel.Generators.Tests
{
    /// <summary>Every diagnostic's help link opens a page that exists, and the index lists it (the package ships these pages).</summary>
    [Trait("Category", "Analyzer")]
    public sealed class DiagnosticPageTests
    {
        [Fact]
        public void EveryDiagnosticHasAPageAndAnIndexEntry()
        {
            var pages = Pages();
            var index = File.ReadAllText(Path.Combine(pages, "README.md"));
            foreach (var descriptor in DiagnosticDescriptors.All)
            {
                var page = Path.Combine(pages, descriptor.Id + ".md");
                Assert.True(File.Exists(page), $"{descriptor.Id} has no page at {page}");
                Assert.StartsWith($"# {descriptor.Id}: ", File.ReadAllText(page));
                Assert.Contains($"[{descriptor.Id}]({descriptor.Id}.md)", index);
            }
        }

        private static string Pages()
        {
            for (var directory = new DirectoryInfo(AppContext.BaseDirectory); directory is not null; directory = directory.Parent)
                if (File.Exists(Path.Combine(directory.FullName, "Dsl.sln"))) return Path.Combine(directory.FullName, "docs", "diagnostics");
            throw new InvalidOperationException($"No Dsl.sln above {AppContext.BaseDirectory}.");
        }
    }
}
