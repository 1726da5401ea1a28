using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp.Syntax;

namespace ModelParallel.Generators
{
    /// <summary>
    /// For each [ParallelModule] class: intercepts the torch.nn.Linear factories of its layer fields so each
    /// rank builds only its shard, intercepts forward calls on partitioned layers to add the communication
    /// their placements need, and implements IPartitionedModule with the parameter placements.
    /// </summary>
    [Generator(LanguageNames.CSharp)]
    public sealed partial class ParallelModuleGenerator : IIncrementalGenerator
    {
        internal const string ParallelModuleAttribute = "ModelParallel.ParallelModuleAttribute";

        /// <inheritdoc/>
        public void Initialize(IncrementalGeneratorInitializationContext context)
        {
            // Every class declaration with attributes, read by Parser.Read: it binds the class and checks for
            // [ParallelModule] itself, after asking SpecCache, so that after an edit elsewhere an unchanged class costs a
            // lookup. ForAttributeWithMetadataName would bind every attributed class on each compilation before that.
            var modules = context.SyntaxProvider
                .CreateSyntaxProvider(
                    static (node, _) => node is ClassDeclarationSyntax { AttributeLists.Count: > 0 },
                    static (syntax, _) => ((ClassDeclarationSyntax)syntax.Node, syntax.SemanticModel.Compilation))
                .Collect()
                .SelectMany(static (declarations, cancellationToken) => Parser.ReadAll(declarations, cancellationToken))
                .WithTrackingName(TrackingNames.ParallelModules);

            // Implementation output: the interceptors and the IPartitionedModule implementation matter to the build, not to
            // what the IDE binds as you type, so the IDE need not run the emitter on every keystroke.
            context.RegisterImplementationSourceOutput(modules, static (output, module) => Emitter.Emit(output, module));
        }
    }
}
