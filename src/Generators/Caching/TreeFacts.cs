using System;
using System.Collections.Generic;
using System.Linq;
using System.Runtime.CompilerServices;
using System.Text;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.CSharp.Syntax;

namespace ModelParallel.Generators.Caching
{
    /// <summary>
    /// What <see cref="CompilationSnapshot"/> needs to know of one syntax tree, computed once per tree instance (a tree is
    /// immutable, so its facts are too): the names it mentions, its text with every member body removed, and the
    /// declarations it adds to a compilation.
    /// </summary>
    internal sealed class TreeFacts
    {
        private static readonly ConditionalWeakTable<SyntaxTree, TreeFacts> ByTree = new();

        /// <summary>Namespaces whose types the generator looks up by metadata name (KnownTypes): a source type there could change what it finds.</summary>
        private static readonly string[] LookedUp = { "TorchSharp", "System", "ModelParallel" };

        private readonly SyntaxTree tree;
        private HashSet<string>? mentioned;
        private string? outline;
        private Additions? additions;

        private TreeFacts(SyntaxTree tree) => this.tree = tree;

        public static TreeFacts Of(SyntaxTree tree) => ByTree.GetValue(tree, static t => new TreeFacts(t));

        /// <summary>
        /// Every identifier written in the tree, the names its code could bind to something else; possibly more (words in
        /// comments and strings), never fewer.
        /// </summary>
        public HashSet<string> Mentioned => mentioned ??= Words(tree.GetText().ToString()) ?? new HashSet<string>(
            tree.GetRoot().DescendantTokens().Where(t => t.IsKind(SyntaxKind.IdentifierToken)).Select(t => t.ValueText), StringComparer.Ordinal);

        /// <summary>
        /// The words of an ASCII text (runs of letters, digits and underscores): a superset of its identifiers, read
        /// without building the tree's nodes. Null when the text has a character outside ASCII or a \u escape, which can
        /// spell an identifier in other ways.
        /// </summary>
        private static HashSet<string>? Words(string text)
        {
            var words = new HashSet<string>(StringComparer.Ordinal);
            int start = -1;
            for (int i = 0; i <= text.Length; i++)
            {
                char c = i < text.Length ? text[i] : ' ';
                if (c > 127 || c == '\\' && i + 1 < text.Length && (text[i + 1] == 'u' || text[i + 1] == 'U')) return null;
                bool word = c == '_' || c is >= 'a' and <= 'z' || c is >= 'A' and <= 'Z' || c is >= '0' and <= '9';
                if (word && start < 0) start = i;
                else if (!word && start >= 0)
                {
                    words.Add(text.Substring(start, i - start));
                    start = -1;
                }
            }
            return words;
        }

        /// <summary>
        /// The tree's tokens outside member bodies, and all its directives. Two versions of a file with the same outline
        /// declare the same things: an edit inside bodies changes nothing that code in another tree binds to.
        /// </summary>
        public string Outline => outline ??= BuildOutline(tree.GetRoot());

        /// <summary>What the tree declares when it is added to a compilation.</summary>
        public Additions Declares => additions ??= Additions.Read(tree.GetRoot());

        private static string BuildOutline(SyntaxNode root)
        {
            var text = new StringBuilder();
            foreach (var token in root.DescendantTokens(n => !IsBody(n))) text.Append(token.Text).Append(' ');
            // Every directive, in bodies too: a #nullable in a body holds for the declarations after it.
            foreach (var directive in root.DescendantTrivia(descendIntoTrivia: true).Where(t => t.IsDirective))
                text.Append('\n').Append(directive.ToString());
            return text.ToString();
        }

        /// <summary>A member's body: what code in other trees can never see.</summary>
        private static bool IsBody(SyntaxNode node) =>
            node is BlockSyntax or ArrowExpressionClauseSyntax
            && node.Parent is BaseMethodDeclarationSyntax or AccessorDeclarationSyntax or BasePropertyDeclarationSyntax;

        /// <summary>
        /// The declarations of a tree, and whether adding it is inert: it changes no binding in other trees except through
        /// the names it declares. Not inert: global usings, assembly or module attributes, extern aliases, top-level
        /// statements, partial types (they may add members to a type that exists), extension methods or blocks (found
        /// through member names and patterns, not type names), and types in a namespace the generator looks up by name.
        /// </summary>
        internal sealed class Additions
        {
            public bool Inert { get; private set; } = true;

            /// <summary>The simple names of the declared types (and, for attributes, the name without "Attribute").</summary>
            public HashSet<string> TypeNames { get; } = new(StringComparer.Ordinal);

            /// <summary>The full names of the declared namespaces, and of each enclosing one ("A", "A.B").</summary>
            public HashSet<string> Namespaces { get; } = new(StringComparer.Ordinal);

            public static Additions Read(SyntaxNode root)
            {
                var result = new Additions();
                if (root is not CompilationUnitSyntax unit) return result.NotInert();
                if (unit.AttributeLists.Count > 0 || unit.Externs.Count > 0 || unit.Usings.Any(u => u.GlobalKeyword.IsKind(SyntaxKind.GlobalKeyword))) result.NotInert();
                result.Members(unit.Members, "");
                return result;
            }

            private Additions NotInert()
            {
                Inert = false;
                return this;
            }

            private void Members(SyntaxList<MemberDeclarationSyntax> members, string inNamespace)
            {
                foreach (var member in members) Member(member, inNamespace);
            }

            private void Member(MemberDeclarationSyntax member, string inNamespace)
            {
                switch (member)
                {
                    case BaseNamespaceDeclarationSyntax ns:
                        var name = inNamespace;
                        foreach (var part in ns.Name.ToString().Split('.'))
                            Namespaces.Add(name = name.Length == 0 ? part.Trim() : name + "." + part.Trim());
                        if (ns.Externs.Count > 0 || ns.Usings.Any(u => u.GlobalKeyword.IsKind(SyntaxKind.GlobalKeyword))) NotInert();
                        Members(ns.Members, name);
                        break;
                    case BaseTypeDeclarationSyntax type:
                        Type(type.Identifier.ValueText, type.Modifiers, inNamespace);
                        if (type is TypeDeclarationSyntax withMembers) Nested(withMembers, inNamespace);
                        break;
                    case DelegateDeclarationSyntax callback:
                        Type(callback.Identifier.ValueText, callback.Modifiers, inNamespace);
                        break;
                    default: // top-level statements, or a member outside any type
                        NotInert();
                        break;
                }
            }

            private void Type(string name, SyntaxTokenList modifiers, string inNamespace)
            {
                TypeNames.Add(name);
                if (name.EndsWith("Attribute", StringComparison.Ordinal) && name.Length > "Attribute".Length) TypeNames.Add(name.Substring(0, name.Length - "Attribute".Length));
                if (modifiers.Any(SyntaxKind.PartialKeyword)) NotInert();
                string first = inNamespace.Split('.')[0];
                if (Array.IndexOf(LookedUp, first) >= 0) NotInert();
            }

            private void Nested(TypeDeclarationSyntax type, string inNamespace)
            {
                foreach (var member in type.Members)
                {
                    if (member is MethodDeclarationSyntax { ParameterList.Parameters: { Count: > 0 } parameters } && parameters[0].Modifiers.Any(SyntaxKind.ThisKeyword)) NotInert();
                    else if (member is BaseTypeDeclarationSyntax or DelegateDeclarationSyntax) Member(member, inNamespace);
                    else if (member.Kind().ToString().StartsWith("Extension", StringComparison.Ordinal)) NotInert(); // C# 14 extension blocks
                }
            }
        }
    }
}
