using System;
using System.IO;
using System.Linq;
using System.Reflection;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Xunit;

namespace ModelParallel.Generators.Tests
{
    /// <summary>
    /// Every public type of ModelParallel can be named with its namespaces imported next to the implicit usings of the
    /// console, web and test templates (ImplicitUsings on), with no CS0104 ambiguity as `Parallel.Run` had.
    /// </summary>
    [Trait("Category", "Package")]
    public sealed class PublicNameTests
    {
        private static readonly string[] ConsoleUsings =
            { "System", "System.Collections.Generic", "System.IO", "System.Linq", "System.Net.Http", "System.Threading", "System.Threading.Tasks" };

        private static readonly string[] WebUsings =
        {
            "System.Net.Http.Json", "Microsoft.AspNetCore.Builder", "Microsoft.AspNetCore.Hosting", "Microsoft.AspNetCore.Http",
            "Microsoft.AspNetCore.Routing", "Microsoft.Extensions.Configuration", "Microsoft.Extensions.DependencyInjection",
            "Microsoft.Extensions.Hosting", "Microsoft.Extensions.Logging",
        };

        private static readonly string[] TestUsings = { "Xunit" };

        [Theory]
        [InlineData("console")]
        [InlineData("web")]
        [InlineData("xunit")]
        public void EveryPublicTypeNameIsUnambiguousUnderTheTemplatesImplicitUsings(string template)
        {
            var usings = template switch
            {
                "console" => ConsoleUsings,
                "web" => ConsoleUsings.Concat(WebUsings).ToArray(),
                _ => ConsoleUsings.Concat(TestUsings).ToArray(),
            };
            var ours = new[] { typeof(ParallelModuleAttribute).Assembly, typeof(Ranks).Assembly }
                .SelectMany(a => a.GetExportedTypes()).Where(t => !t.IsNested).ToList();
            Assert.Contains(ours, t => t.Name == "Ranks");
            var namespaces = ours.Select(t => t.Namespace!).Distinct().OrderBy(n => n).ToList();
            var source = string.Join("\n", usings.Select(u => $"global using global::{u};"))
                + "\n" + string.Join("\n", namespaces.Select(n => $"using {n};"))
                + "\nstatic class Names\n{\n    static void Use()\n    {\n"
                + string.Join("\n", ours.Select(t => $"        _ = typeof({Spell(t)});"))
                + "\n    }\n}\n";
            var compilation = CSharpCompilation.Create("Names", new[] { CSharpSyntaxTree.ParseText(source) }, References(template),
                new CSharpCompilationOptions(OutputKind.DynamicallyLinkedLibrary));
            // Every namespace of the template's usings resolved, or the check would prove nothing for it.
            Assert.DoesNotContain(compilation.GetDiagnostics(), d => d.Id is "CS0246" or "CS0234");
            var ambiguous = compilation.GetDiagnostics().Where(d => d.Id == "CS0104").Select(d => d.GetMessage()).ToList();
            Assert.True(ambiguous.Count == 0, string.Join("\n", ambiguous));
            Assert.Empty(compilation.GetDiagnostics().Where(d => d.Severity == DiagnosticSeverity.Error));
        }

        private static string Spell(Type type) =>
            type.IsGenericTypeDefinition ? $"{type.Name[..type.Name.IndexOf('`')]}<{new string(',', type.GetGenericArguments().Length - 1)}>" : type.Name;

        private static MetadataReference[] References(string template)
        {
            var paths = ((string)AppContext.GetData("TRUSTED_PLATFORM_ASSEMBLIES")!).Split(Path.PathSeparator).ToList();
            if (template == "web")
            {
                // The ASP.NET Core shared framework beside the running one (…/shared/Microsoft.NETCore.App/<v> → …/Microsoft.AspNetCore.App/<v>).
                var netCore = new DirectoryInfo(Path.GetDirectoryName(typeof(object).Assembly.Location)!);
                var aspNet = Path.Combine(netCore.Parent!.Parent!.FullName, "Microsoft.AspNetCore.App");
                var version = Directory.GetDirectories(aspNet).OrderBy(d => d).Last();
                paths.AddRange(Directory.GetFiles(version, "*.dll"));
            }
            if (template == "xunit") paths.Add(typeof(FactAttribute).Assembly.Location);
            paths.Add(typeof(ParallelModuleAttribute).Assembly.Location);
            paths.Add(typeof(Ranks).Assembly.Location);
            paths.Add(typeof(TorchSharp.torch).Assembly.Location);
            return paths.Distinct(StringComparer.Ordinal).Where(p => IsAssembly(p)).Select(p => (MetadataReference)MetadataReference.CreateFromFile(p)).ToArray();
        }

        private static bool IsAssembly(string path)
        {
            try
            {
                AssemblyName.GetAssemblyName(path);
                return true;
            }
            catch (BadImageFormatException)
            {
                return false;
            }
        }
    }
}
