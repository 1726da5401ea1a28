using System;
using System.Diagnostics;
using System.IO;
using System.Linq;
using System.Text.Json.Nodes;
using System.Threading.Tasks;
using Xunit;
using Xunit.Abstractions;

namespace ModelParallel.Tests
{
    /// <summary>
    /// The package's analyzer as an IDE user meets it: a real C# language server (csharp-ls, what VS Code, Neovim and
    /// Emacs users run) loads a package consumer, and reports MP0001 at the span of a non-partial [ParallelModule] class.
    /// </summary>
    [Collection(PackageCollection.Name)]
    [Trait("Category", "Package")]
    public sealed class EditorTests
    {
        private static readonly TimeSpan Limit = TimeSpan.FromSeconds(120);
        private readonly PackageFeed feed;
        private readonly ITestOutputHelper output;

        public EditorTests(PackageFeed feed, ITestOutputHelper output)
        {
            this.feed = feed;
            this.output = output;
        }

        [Fact]
        public async Task ALanguageServerReportsMP0001AtTheClassName()
        {
            var project = feed.NewConsumer("Editor");
            foreach (var file in new[] { "Model.cs", "Program.cs" })
                File.Copy(Path.Combine(AppContext.BaseDirectory, "Consumers", file), Path.Combine(project, file), overwrite: true);
            var model = Path.Combine(project, "Model.cs");
            var text = File.ReadAllText(model).Replace("public sealed partial class", "public sealed class");
            File.WriteAllText(model, text);
            // The repository's tool manifest pins csharp-ls; `dotnet tool run` finds it above the consumer.
            File.Copy(Path.Combine(feed.Repository, "dotnet-tools.json"), Path.Combine(feed.Root, "dotnet-tools.json"), overwrite: true);
            PackageFeed.Expect(Command.Run("dotnet", "tool restore", feed.Root, PackageFeed.Limit), "dotnet tool restore");
            PackageFeed.Expect(Command.Run("dotnet", "restore", project, PackageFeed.Limit), "dotnet restore");

            using var server = new LanguageServerClient(new ProcessStartInfo("dotnet", "tool run csharp-ls") { WorkingDirectory = project });
            var root = new Uri(project + "/").AbsoluteUri;
            var uri = new Uri(model).AbsoluteUri;
            await server.Request("initialize", new JsonObject
            {
                ["processId"] = Environment.ProcessId,
                ["rootUri"] = root,
                ["capabilities"] = new JsonObject
                {
                    ["workspace"] = new JsonObject { ["configuration"] = true },
                    ["textDocument"] = new JsonObject { ["diagnostic"] = new JsonObject(), ["codeAction"] = new JsonObject() },
                },
                ["initializationOptions"] = LanguageServerClient.AnalyzersEnabled(),
            }, Limit);
            server.Notify("initialized", new JsonObject());
            server.Notify("textDocument/didOpen", new JsonObject
            {
                ["textDocument"] = new JsonObject { ["uri"] = uri, ["languageId"] = "csharp", ["version"] = 1, ["text"] = text },
            });

            // The server loads the project in the background; ask as an editor does until MP0001 is there.
            var clock = Stopwatch.StartNew();
            JsonNode? mp0001 = null;
            while (mp0001 is null && clock.Elapsed < Limit)
            {
                var report = await server.Request("textDocument/diagnostic", new JsonObject { ["textDocument"] = new JsonObject { ["uri"] = uri } }, Limit);
                mp0001 = report?["items"]?.AsArray().FirstOrDefault(d => d?["code"]?.ToString() == "MP0001");
                if (mp0001 is null) await Task.Delay(TimeSpan.FromSeconds(1));
            }
            Assert.True(mp0001 is not null, $"no MP0001 within {Limit.TotalSeconds} s.\n{server.Log}");
            output.WriteLine($"MP0001 after {clock.Elapsed.TotalSeconds:F1} s: {mp0001!.ToJsonString()}");

            // Model.cs line 9 (0-based 8): "public sealed class TwoLayerMlp"; the span is the class name.
            var line = text.Split('\n')[8];
            int column = line.IndexOf("TwoLayerMlp", StringComparison.Ordinal);
            Assert.Equal(8, mp0001["range"]!["start"]!["line"]!.GetValue<int>());
            Assert.Equal(column, mp0001["range"]!["start"]!["character"]!.GetValue<int>());
            Assert.Equal(column + "TwoLayerMlp".Length, mp0001["range"]!["end"]!["character"]!.GetValue<int>());
            Assert.Equal(1, mp0001["severity"]!.GetValue<int>()); // Error

            var actions = await server.Request("textDocument/codeAction", new JsonObject
            {
                ["textDocument"] = new JsonObject { ["uri"] = uri },
                ["range"] = mp0001["range"]!.DeepClone(),
                ["context"] = new JsonObject { ["diagnostics"] = new JsonArray(mp0001.DeepClone()) },
            }, Limit);
            output.WriteLine($"code actions offered: {string.Join(" | ", actions?.AsArray().Select(a => a?["title"]?.ToString()) ?? Array.Empty<string>())}");
        }
    }
}
