using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Text;
using System.Text.RegularExpressions;
using System.Xml.Linq;

namespace ModelParallel.Examples.Gpt.Data
{
    /// <summary>
    /// The text to train on, as documents. By default the XML documentation of the .NET reference pack that ships with
    /// the running SDK (the prose of every member's summary, remarks, param and returns); or any text file or folder.
    /// </summary>
    public sealed class Corpus
    {
        private Corpus(string description, IReadOnlyList<string> files)
        {
            Description = description;
            Files = files;
        }

        /// <summary>Where the text comes from, for people.</summary>
        public string Description { get; }

        /// <summary>The files read, in a fixed order.</summary>
        public IReadOnlyList<string> Files { get; }

        /// <summary>The reference pack's documentation (found from the running .NET), or <paramref name="path"/> when given.</summary>
        public static Corpus Open(string? path)
        {
            if (path is null)
            {
                var folder = ReferenceDocumentation();
                return new Corpus($"the .NET reference documentation in {folder}", Directory.GetFiles(folder, "*.xml").OrderBy(f => f, StringComparer.Ordinal).ToArray());
            }
            if (File.Exists(path)) return new Corpus(path, new[] { Path.GetFullPath(path) });
            if (Directory.Exists(path))
            {
                var files = Directory.GetFiles(path, "*", SearchOption.AllDirectories).Where(IsText).OrderBy(f => f, StringComparer.Ordinal).ToArray();
                if (files.Length == 0) throw new UsageException($"--corpus {path}: the folder has no .txt, .md or .xml files.");
                return new Corpus(path, files.Select(Path.GetFullPath).ToArray());
            }
            throw new UsageException($"--corpus {path}: no such file or folder.");
        }

        /// <summary>
        /// The documents of the corpus, file by file: for documentation XML, each member's prose; for other text,
        /// each paragraph (lines up to a blank line).
        /// </summary>
        public IEnumerable<string> Documents(string file) =>
            file.EndsWith(".xml", StringComparison.OrdinalIgnoreCase) ? XmlDocuments(file) : Paragraphs(file);

        /// <summary>
        /// packs/Microsoft.NETCore.App.Ref/&lt;newest version&gt;/ref/&lt;tfm&gt;/ under the root of the .NET that runs
        /// this program (the runtime's directory is &lt;root&gt;/shared/Microsoft.NETCore.App/&lt;version&gt;/), or DOTNET_ROOT.
        /// </summary>
        public static string ReferenceDocumentation()
        {
            var runtime = System.Runtime.InteropServices.RuntimeEnvironment.GetRuntimeDirectory();
            var roots = new[] { Path.GetFullPath(Path.Combine(runtime, "..", "..", "..")), Environment.GetEnvironmentVariable("DOTNET_ROOT") }
                .Where(r => !string.IsNullOrEmpty(r)).Distinct();
            foreach (var root in roots)
            {
                var pack = Path.Combine(root!, "packs", "Microsoft.NETCore.App.Ref");
                if (!Directory.Exists(pack)) continue;
                var found = Directory.GetDirectories(pack)
                    .OrderByDescending(d => Version.TryParse(Path.GetFileName(d).Split('-')[0], out var v) ? v : new Version(0, 0))
                    .SelectMany(d => Directory.Exists(Path.Combine(d, "ref")) ? Directory.GetDirectories(Path.Combine(d, "ref")) : Array.Empty<string>())
                    .FirstOrDefault(d => Directory.GetFiles(d, "*.xml").Length > 0);
                if (found is not null) return found;
            }
            throw new UsageException($"No .NET reference pack documentation (packs/Microsoft.NETCore.App.Ref/*/ref/*/*.xml) under {string.Join(" or ", roots)}; give a text file or folder with --corpus.");
        }

        private static bool IsText(string file) =>
            file.EndsWith(".txt", StringComparison.OrdinalIgnoreCase) || file.EndsWith(".md", StringComparison.OrdinalIgnoreCase) || file.EndsWith(".xml", StringComparison.OrdinalIgnoreCase);

        private static readonly string[] ProseElements = { "summary", "remarks", "param", "returns", "value", "exception" };
        private static readonly Regex Spaces = new(@"\s+", RegexOptions.Compiled);

        private static IEnumerable<string> XmlDocuments(string file)
        {
            XDocument document;
            try
            {
                document = XDocument.Load(file);
            }
            catch (System.Xml.XmlException e)
            {
                throw new UsageException($"{file} is not well-formed XML: {e.Message}");
            }
            var members = document.Descendants("member").ToList();
            if (members.Count == 0) // any other XML: its text
            {
                var all = Clean(document.Root?.Value ?? "");
                if (all.Length > 0) yield return all;
                yield break;
            }
            foreach (var member in members)
            {
                var text = string.Join(" ", member.Elements().Where(e => ProseElements.Contains(e.Name.LocalName)).Select(Prose).Where(t => t.Length > 0));
                if (text.Length > 0) yield return text;
            }
        }

        /// <summary>An element's text, with references (see cref, paramref, typeparamref) read as the names they point to.</summary>
        private static string Prose(XElement element)
        {
            var text = new StringBuilder();
            foreach (var node in element.DescendantNodes())
            {
                if (node is XText t) text.Append(t.Value);
                else if (node is XElement { IsEmpty: true } reference)
                {
                    var name = (string?)reference.Attribute("cref") ?? (string?)reference.Attribute("name") ?? (string?)reference.Attribute("langword") ?? "";
                    int colon = name.IndexOf(':');
                    if (colon >= 0) name = name.Substring(colon + 1);
                    int paren = name.IndexOf('(');
                    if (paren >= 0) name = name.Substring(0, paren);
                    text.Append(' ').Append(name.Split('.').Last().Split('`')[0]).Append(' ');
                }
            }
            return Clean(text.ToString());
        }

        private static string Clean(string text) => Spaces.Replace(text, " ").Trim().Replace(" .", ".").Replace(" ,", ",");

        private static IEnumerable<string> Paragraphs(string file)
        {
            var paragraph = new StringBuilder();
            foreach (var line in File.ReadLines(file))
            {
                if (line.Trim().Length == 0)
                {
                    if (paragraph.Length > 0) yield return paragraph.ToString().Trim();
                    paragraph.Clear();
                }
                else paragraph.Append(line).Append('\n');
            }
            if (paragraph.Length > 0) yield return paragraph.ToString().Trim();
        }
    }
}
