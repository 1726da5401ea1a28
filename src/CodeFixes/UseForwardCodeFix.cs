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
    /// <summary>
    /// MP0004: a partitioned layer reached through <c>layer.call(x)</c> becomes <c>layer.forward(x)</c>; used as a method
    /// group <c>layer.forward</c>, it becomes the lambda <c>input =&gt; layer.forward(input)</c>. Both direct calls are intercepted.
    /// </summary>
    [ExportCodeFixProvider(LanguageNames.CSharp, Name = nameof(UseForwardCodeFix)), Shared]
    public sealed class UseForwardCodeFix : CodeFixProvider
    {
        /// <inheritdoc/>
        public override ImmutableArray<string> FixableDiagnosticIds { get; } = ImmutableArray.Create("MP0004");

        /// <inheritdoc/>
        public override FixAllProvider GetFixAllProvider() => WellKnownFixAllProviders.BatchFixer;

        /// <inheritdoc/>
        public override async Task RegisterCodeFixesAsync(CodeFixContext context)
        {
            var root = await context.Document.GetSyntaxRootAsync(context.CancellationToken).ConfigureAwait(false);
            var node = root?.FindNode(context.Span, getInnermostNodeForTie: true);
            if (root is null || node is null) return;
            if (node.AncestorsAndSelf().OfType<InvocationExpressionSyntax>().FirstOrDefault() is { Expression: MemberAccessExpressionSyntax { Name.Identifier.Text: "call" } access } call
                && call.Span.Contains(context.Span))
            {
                var fixedCall = call.WithExpression(access.WithName(SyntaxFactory.IdentifierName("forward").WithTriviaFrom(access.Name)));
                context.RegisterCodeFix(CodeAction.Create("Call forward directly",
                    _ => Task.FromResult(context.Document.WithSyntaxRoot(root.ReplaceNode(call, fixedCall))), nameof(UseForwardCodeFix)), context.Diagnostics);
            }
            else if (node.AncestorsAndSelf().OfType<MemberAccessExpressionSyntax>().FirstOrDefault() is { Name.Identifier.Text: "forward" } group)
            {
                var lambda = SyntaxFactory.SimpleLambdaExpression(SyntaxFactory.Parameter(SyntaxFactory.Identifier("input")),
                    SyntaxFactory.InvocationExpression(group, SyntaxFactory.ArgumentList(SyntaxFactory.SingletonSeparatedList(
                        SyntaxFactory.Argument(SyntaxFactory.IdentifierName("input")))))).WithTriviaFrom(group);
                context.RegisterCodeFix(CodeAction.Create("Call forward in a lambda",
                    _ => Task.FromResult(context.Document.WithSyntaxRoot(root.ReplaceNode(group, lambda.NormalizeWhitespace().WithTriviaFrom(group)))), nameof(UseForwardCodeFix) + ".Lambda"),
                    context.Diagnostics);
            }
        }
    }
}
