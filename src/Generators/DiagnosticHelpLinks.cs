using System;
using System.Collections.Concurrent;
using System.IO;
using System.Linq;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.Diagnostics;

namespace ModelParallel.Generators
{
    /// <summary>
    /// Help links that open on the user's machine. The build passes the folder holding the diagnostic pages as the
    /// MSBuild property <c>ModelParallelDiagnosticsDirectory</c> (the package's own docs/diagnostics, or this
    /// repository's); each descriptor is then re-created once with a file URI to its page. Without the property the
    /// descriptors carry no link, rather than one that does not resolve.
    /// </summary>
    internal static class DiagnosticHelpLinks
    {
        public const string Property = "build_property.ModelParallelDiagnosticsDirectory";

        private static readonly ConcurrentDictionary<(string Directory, string Id), DiagnosticDescriptor> linked = new();

        /// <summary>The folder of the pages this compilation's build names, or null.</summary>
        public static string? Directory(AnalyzerConfigOptionsProvider options) =>
            options.GlobalOptions.TryGetValue(Property, out var directory) && Path.IsPathRooted(directory) ? directory : null;

        /// <summary><paramref name="descriptor"/> with its help link pointing at its page in <paramref name="directory"/>.</summary>
        public static DiagnosticDescriptor For(DiagnosticDescriptor descriptor, string? directory) =>
            directory is null ? descriptor : linked.GetOrAdd((directory, descriptor.Id), key => new DiagnosticDescriptor(
                descriptor.Id, descriptor.Title, descriptor.MessageFormat, descriptor.Category, descriptor.DefaultSeverity,
                descriptor.IsEnabledByDefault, descriptor.Description,
                helpLinkUri: new Uri(Path.Combine(key.Directory, key.Id + ".md")).AbsoluteUri, customTags: descriptor.CustomTags.ToArray()));
    }
}
