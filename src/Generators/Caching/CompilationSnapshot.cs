using System.Collections.Generic;
using System.Collections.Immutable;
using System.Linq;
using System.Runtime.CompilerServices;
using Microsoft.CodeAnalysis;

namespace ModelParallel.Generators.Caching
{
    /// <summary>
    /// The inputs of one compilation that a class's spec can depend on beyond the trees its read touched: the trees in
    /// order, the references and the options. <see cref="BindsAlike"/> decides whether a later compilation binds every
    /// name of these trees to the same declarations, so a spec read in this one still holds there for a class whose own
    /// and dependency trees are unchanged.
    /// </summary>
    internal sealed class CompilationSnapshot
    {
        private static readonly ConditionalWeakTable<Compilation, CompilationSnapshot> ByCompilation = new();
        private readonly ConditionalWeakTable<Compilation, StrongBox<bool>> alike = new();
        private readonly ImmutableArray<SyntaxTree> trees;
        private readonly HashSet<SyntaxTree> set;
        private readonly ImmutableArray<MetadataReference> references;
        private readonly CompilationOptions options;
        private readonly string? assemblyName;

        private CompilationSnapshot(Compilation compilation)
        {
            trees = compilation.SyntaxTrees.ToImmutableArray();
            set = new HashSet<SyntaxTree>(trees);
            references = compilation.ExternalReferences;
            options = compilation.Options;
            assemblyName = compilation.AssemblyName;
        }

        public static CompilationSnapshot Of(Compilation compilation) => ByCompilation.GetValue(compilation, static c => new CompilationSnapshot(c));

        /// <summary>Whether <paramref name="later"/> binds this compilation's names alike (computed once per pair).</summary>
        public bool BindsAlike(Compilation later) => alike.GetValue(later, l => new StrongBox<bool>(Compare(l))).Value;

        /// <summary>
        /// True when the references and options are the same, and every tree that changed is either the same file edited
        /// inside member bodies only (its outline is unchanged) or a new file whose additions are inert and declare no type
        /// or namespace whose name any tree of the compilation mentions. Anything else (a removed file, a changed
        /// declaration, a new name that is written somewhere, a reordering) is false: the caller reads the class again.
        /// </summary>
        private bool Compare(Compilation later)
        {
            if (!later.ExternalReferences.SequenceEqual(references, ReferenceEqualityComparer.Instance)
                || !Equals(later.Options, options) || later.AssemblyName != assemblyName) return false;
            var now = later.SyntaxTrees.ToImmutableArray();
            var nowSet = new HashSet<SyntaxTree>(now);
            var removed = new Dictionary<string, SyntaxTree>();
            foreach (var tree in trees)
            {
                if (nowSet.Contains(tree)) continue;
                if (removed.ContainsKey(tree.FilePath)) return false;
                removed[tree.FilePath] = tree;
            }
            var edited = new Dictionary<SyntaxTree, SyntaxTree>(); // new version → old version, edited inside bodies only
            var added = new HashSet<SyntaxTree>();
            foreach (var tree in now)
            {
                if (set.Contains(tree)) continue;
                if (removed.TryGetValue(tree.FilePath, out var old))
                {
                    if (TreeFacts.Of(old).Outline != TreeFacts.Of(tree).Outline) return false;
                    removed.Remove(tree.FilePath);
                    edited[tree] = old;
                }
                else if (TreeFacts.Of(tree).Declares.Inert) added.Add(tree);
                else return false;
            }
            if (removed.Count > 0) return false;
            // Declarations come in tree order (a partial class's parts, for one): the kept files keep theirs.
            var keptNow = now.Where(t => !added.Contains(t)).Select(t => edited.TryGetValue(t, out var old) ? old : t);
            if (!keptNow.SequenceEqual(trees)) return false;
            if (added.Count == 0) return true;

            var declaredNamespaces = new HashSet<string>(trees.SelectMany(t => TreeFacts.Of(t).Declares.Namespaces));
            var names = new HashSet<string>();
            foreach (var tree in added)
            {
                var declares = TreeFacts.Of(tree).Declares;
                names.UnionWith(declares.TypeNames);
                // A namespace that already exists adds no name; a new one (or a new inner part) is a name like a type's.
                foreach (var ns in declares.Namespaces.Where(n => !declaredNamespaces.Contains(n))) names.Add(ns.Substring(ns.LastIndexOf('.') + 1));
            }
            return now.Where(t => !added.Contains(t)).All(t => !TreeFacts.Of(t).Mentioned.Overlaps(names));
        }

        private sealed class ReferenceEqualityComparer : IEqualityComparer<MetadataReference>
        {
            public static readonly ReferenceEqualityComparer Instance = new();
            public bool Equals(MetadataReference? x, MetadataReference? y) => ReferenceEquals(x, y);
            public int GetHashCode(MetadataReference obj) => RuntimeHelpers.GetHashCode(obj);
        }
    }
}
