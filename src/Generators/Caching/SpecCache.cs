using System.Collections.Concurrent;
using System.Collections.Generic;
using System.Linq;
using System.Runtime.CompilerServices;
using Microsoft.CodeAnalysis;
using ModelParallel.Generators.Model;

namespace ModelParallel.Generators.Caching
{
    /// <summary>
    /// What was read of each attributed class declaration, kept across compilations: its spec, or that it is no
    /// [ParallelModule]. Roslyn runs the generator's transform again for every such declaration whenever any file changes,
    /// and a read binds the class, its attributes, constructor and forward afresh (about 1 ms a class warm, 2–3 cold). A result read in
    /// an earlier compilation is reused when that is provably the same read: the declaration's tree and every tree the
    /// read bound are the same instances, and the compilation binds every name alike
    /// (<see cref="CompilationSnapshot.BindsAlike"/>). Otherwise the declaration is read again. Entries live as long as
    /// the declaration's tree.
    /// </summary>
    internal static class SpecCache
    {
        private sealed record Entry(ModuleSpec? Spec, SyntaxTree[] Dependencies, CompilationSnapshot Basis);

        private static readonly ConditionalWeakTable<SyntaxTree, ConcurrentDictionary<(int Position, bool ForDiagnostics), Entry>> Entries = new();

        /// <summary>
        /// Whether the declaration at <paramref name="position"/> of <paramref name="tree"/> was read earlier in a
        /// compilation that <paramref name="compilation"/> provably agrees with; <paramref name="spec"/> is what was read
        /// (null: not a [ParallelModule]).
        /// </summary>
        public static bool TryFind(SyntaxTree tree, int position, bool forDiagnostics, Compilation compilation, out ModuleSpec? spec)
        {
            spec = null;
            if (!Entries.TryGetValue(tree, out var entries) || !entries.TryGetValue((position, forDiagnostics), out var entry)) return false;
            var now = CompilationSnapshot.Of(compilation);
            if (!ReferenceEquals(entry.Basis, now))
            {
                if (!entry.Dependencies.All(compilation.ContainsSyntaxTree) || !entry.Basis.BindsAlike(compilation)) return false;
                entries[(position, forDiagnostics)] = entry with { Basis = now }; // the next edit is compared with this compilation
            }
            spec = entry.Spec;
            return true;
        }

        /// <summary>
        /// Keeps what was read of the declaration at <paramref name="position"/> of <paramref name="tree"/> in
        /// <paramref name="compilation"/>, from that tree and the trees in <paramref name="read"/>. Not kept when a
        /// diagnostic points into a file outside them (its position could move).
        /// </summary>
        public static void Store(SyntaxTree tree, int position, bool forDiagnostics, Compilation compilation, ModuleSpec? spec, IEnumerable<SyntaxTree> read)
        {
            var dependencies = read.Append(tree).Distinct().ToArray();
            var files = new HashSet<string>(dependencies.Select(t => t.FilePath));
            if (spec is not null && spec.Diagnostics.Any(d => d.Location is { } at && !files.Contains(at.FilePath))) return;
            Entries.GetValue(tree, static _ => new())[(position, forDiagnostics)] = new Entry(spec, dependencies, CompilationSnapshot.Of(compilation));
        }
    }
}
