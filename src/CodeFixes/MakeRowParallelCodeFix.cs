using System.Collections.Immutable;
using System.Composition;
using System.Linq;
using System.Threading.Tasks;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CodeActions;
using Microsoft.CodeAnalysis.CodeFixes;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.CSharp.Syntax;

namespace ModelParallel.CodeFixes
{
    /// <summary>MP0015: the second of two ColumnParallel layers in a row becomes [RowParallel] (Megatron's pairing, no all-gather).</summary>
    [ExportCodeFixProvider(LanguageNames.CSharp, Name = nameof(MakeRowParallelCodeFix)), Shared]
    public sealed class MakeRowParallelCodeFix : CodeFixProvider
    {
        /// <inheritdoc/>
        public override ImmutableArray<string> FixableDiagnosticIds { get; } = ImmutableArray.Create("MP0015");

        /// <inheritdoc/>
        public override FixAllProvider GetFixAllProvider() => WellKnownFixAllProviders.BatchFixer;

        /// <inheritdoc/>
        public override async Task RegisterCodeFixesAsync(CodeFixContext context)
        {
            var root = await context.Document.GetSyntaxRootAsync(context.CancellationToken).ConfigureAwait(false);
            var model = await context.Document.GetSemanticModelAsync(context.CancellationToken).ConfigureAwait(false);
            var call = root?.FindNode(context.Span, getInnermostNodeForTie: true).AncestorsAndSelf().OfType<InvocationExpressionSyntax>().FirstOrDefault();
            if (root is null || model is null || call?.Expression is not MemberAccessExpressionSyntax access) return;
            if (model.GetSymbolInfo(access.Expression, context.CancellationToken).Symbol is not IFieldSymbol field) return;
            if (field.DeclaringSyntaxReferences.FirstOrDefault()?.GetSyntax(context.CancellationToken) is not VariableDeclaratorSyntax declarator
                || declarator.Parent?.Parent is not FieldDeclarationSyntax declaration || declaration.SyntaxTree != root.SyntaxTree) return;
            var attribute = declaration.AttributeLists.SelectMany(l => l.Attributes)
                .FirstOrDefault(a => a.Name.ToString() is "ColumnParallel" or "ColumnParallelAttribute" or "ModelParallel.ColumnParallel");
            if (attribute is null) return;
            context.RegisterCodeFix(CodeAction.Create($"Make '{field.Name}' [RowParallel]",
                _ => Task.FromResult(context.Document.WithSyntaxRoot(root.ReplaceNode(attribute,
                    attribute.WithName(SyntaxFactory.IdentifierName("RowParallel").WithTriviaFrom(attribute.Name))))), nameof(MakeRowParallelCodeFix)),
                context.Diagnostics);
        }
    }
}
