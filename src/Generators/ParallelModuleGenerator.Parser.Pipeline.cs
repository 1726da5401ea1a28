using System.Collections.Generic;
using System.Linq;
using System.Threading;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp.Syntax;
using Microsoft.CodeAnalysis.Operations;
using ModelParallel.Generators.Model;

namespace ModelParallel.Generators
{
    public sealed partial class ParallelModuleGenerator
    {
        internal static partial class Parser
        {
            private const string ModuleListType = "TorchSharp.Modules.ModuleList`1";
            private const string ModuleType = "TorchSharp.torch+nn+Module";
            private const string ParallelModuleAttribute = "ModelParallel.ParallelModuleAttribute";
            private const string StagesAttribute = "ModelParallel.PipelineStagesAttribute";
            private const string FirstAttribute = "ModelParallel.FirstStageAttribute";
            private const string LastAttribute = "ModelParallel.LastStageAttribute";

            /// <summary>The pipeline declarations of one class, as read so far.</summary>
            private sealed class Stages
            {
                public IFieldSymbol? Field;
                public int[] Split = System.Array.Empty<int>();
                public readonly Dictionary<string, StageRole> Roles = new();
                public bool BlocksBuilt;

                public StageRole? RoleOf(IFieldSymbol field) => RoleOf(field.Name);

                public StageRole? RoleOf(string field) => Roles.TryGetValue(field, out var role) ? role : null;

                public PipelineSpec? ToSpec() => Field is null ? null : new PipelineSpec(Field.Name, Split.ToEquatableArray(),
                    Roles.Where(r => r.Value == StageRole.First).Select(r => r.Key).ToEquatableArray(),
                    Roles.Where(r => r.Value == StageRole.Last).Select(r => r.Key).ToEquatableArray());
            }

            /// <summary>Reads [PipelineStages], [FirstStage] and [LastStage] fields and reports misuse.</summary>
            private static Stages ReadStages(INamedTypeSymbol type, KnownTypes known, List<DiagnosticInfo> diagnostics)
            {
                var stages = new Stages();
                foreach (var field in type.GetMembers().OfType<IFieldSymbol>())
                {
                    var attributes = field.GetAttributes();
                    AttributeData? Find(string name) => attributes.FirstOrDefault(a => known.Is(a.AttributeClass, name));
                    Location? At(AttributeData a) => a.ApplicationSyntaxReference?.GetSyntax().GetLocation() ?? field.Locations.FirstOrDefault();
                    var list = Find(StagesAttribute);
                    var first = Find(FirstAttribute);
                    var last = Find(LastAttribute);
                    if (list is not null)
                    {
                        string? problem = stages.Field is not null
                            ? $"'{stages.Field.Name}' is already the [PipelineStages] list of '{type.Name}'; a module has one"
                            : field.Type is not INamedTypeSymbol { IsGenericType: true } listType || !known.Is(listType, ModuleListType)
                                ? $"its type '{field.Type.ToDisplayString()}' is not TorchSharp.Modules.ModuleList<Block>"
                                : !listType.TypeArguments[0].GetAttributes().Any(a => known.Is(a.AttributeClass, ParallelModuleAttribute))
                                    ? $"its block type '{listType.TypeArguments[0].ToDisplayString()}' is not a [ParallelModule] class, so every rank would build all of its layers"
                                    : null;
                        if (problem is not null) diagnostics.Add(Diagnostic(DiagnosticDescriptors.InvalidStagesFieldId, At(list), field.Name, problem));
                        else
                        {
                            stages.Field = field;
                            var split = list.NamedArguments.FirstOrDefault(a => a.Key == "Split").Value;
                            if (split.Kind == TypedConstantKind.Array && !split.IsNull)
                                stages.Split = split.Values.Select(v => v.Value is int i ? i : 0).ToArray();
                        }
                        if (first is not null || last is not null)
                            diagnostics.Add(Diagnostic(DiagnosticDescriptors.InvalidStageMarkerId, At(first ?? last!), first is not null ? "FirstStage" : "LastStage", field.Name,
                                "the [PipelineStages] list is split over every stage; it cannot also be a first- or last-stage layer"));
                        continue;
                    }
                    if (first is not null && last is not null)
                        diagnostics.Add(Diagnostic(DiagnosticDescriptors.InvalidStageMarkerId, At(last), "LastStage", field.Name, "it is also [FirstStage]; a layer runs on one of them"));
                    else if ((first ?? last) is { } marker)
                    {
                        if (!known.DerivesFrom(field.Type, ModuleType))
                            diagnostics.Add(Diagnostic(DiagnosticDescriptors.InvalidStageMarkerId, At(marker), first is not null ? "FirstStage" : "LastStage", field.Name,
                                $"'{field.Type.ToDisplayString()}' is not a TorchSharp module"));
                        else stages.Roles[field.Name] = first is not null ? StageRole.First : StageRole.Last;
                    }
                }
                if (stages.Field is null && stages.Roles.Count > 0)
                {
                    foreach (var name in stages.Roles.Keys.ToList())
                    {
                        var field = type.GetMembers(name).First();
                        var marker = field.GetAttributes().First(a => known.Is(a.AttributeClass, FirstAttribute) || known.Is(a.AttributeClass, LastAttribute));
                        diagnostics.Add(Diagnostic(DiagnosticDescriptors.InvalidStageMarkerId, marker.ApplicationSyntaxReference?.GetSyntax().GetLocation(),
                            stages.Roles[name] + "Stage", name, $"'{type.Name}' has no [PipelineStages] list, so it has no pipeline stages"));
                    }
                    stages.Roles.Clear();
                }
                return stages;
            }

            /// <summary>
            /// Pipeline call sites: the Select that builds the blocks, other torch.nn layer factories (built on the
            /// meta device off-stage), and forwards of non-Linear stage layers. True when the invocation was handled.
            /// </summary>
            private static bool ReadPipelineInvocation(INamedTypeSymbol type, Dictionary<string, LayerSpec> layers, Stages stages,
                IInvocationOperation invocation, InvocationExpressionSyntax call, SemanticModel model, KnownTypes known, List<InterceptionSpec> interceptions,
                CancellationToken cancellationToken)
            {
                var method = invocation.TargetMethod;
                if (stages.Field is { } list && method.Name == "Select" && known.Is(method.ContainingType, "System.Linq.Enumerable")
                    && method.Parameters.Length == 2 && method.Parameters[1].Type is INamedTypeSymbol { TypeArguments.Length: 2 }
                    && IsConstructor(invocation) && FlowsInto(invocation, list))
                {
                    var split = stages.Split.Length == 0 ? "global::System.Array.Empty<int>()" : $"new int[] {{ {string.Join(", ", stages.Split)} }}";
                    if (Intercept(InterceptionKind.StageBlocks, new LayerSpec(list.Name, LayerPlacement.Default), method, call, model, cancellationToken) is { } blocks)
                    {
                        interceptions.Add(blocks with { SplitCode = split });
                        stages.BlocksBuilt = true;
                    }
                    return true;
                }

                if (method.IsStatic && !method.IsGenericMethod && known.Is(method.ContainingType, NnType)
                    && known.DerivesFrom(method.ReturnType, ModuleType) && method.Parameters.Any(p => p.Name == "device")
                    && AssignedAnyField(type, invocation) is { } built && !((IsLinearFactory(method) || method.Name == "Embedding") && layers.ContainsKey(built.Name)))
                {
                    if (Intercept(InterceptionKind.LayerFactory, new LayerSpec(built.Name, LayerPlacement.Default), method, call, model, cancellationToken) is { } factory)
                        interceptions.Add(factory with { Role = stages.RoleOf(built), FactoryType = $"global::TorchSharp.torch.nn.{method.Name}" });
                    return true;
                }

                if (Instance(invocation.Instance) is IFieldReferenceOperation reference && Own(type, reference.Field) && !layers.ContainsKey(reference.Field.Name)
                    && stages.RoleOf(reference.Field) is { } role && method.Name == "forward" && method.Parameters.Length == 1
                    && SymbolEqualityComparer.Default.Equals(method.ReturnType, method.Parameters[0].Type))
                {
                    if (Intercept(InterceptionKind.StageForward, new LayerSpec(reference.Field.Name, LayerPlacement.Default), method, call, model, cancellationToken) is { } forward)
                        interceptions.Add(forward with { Role = role });
                    return true;
                }
                return false;
            }

            private static bool IsLinearFactory(IMethodSymbol method) =>
                method.Name == "Linear" && method.Parameters.Length > 0 && method.Parameters[0].Type.SpecialType == SpecialType.System_Int64;

            /// <summary>Checks that forward chains [FirstStage] layers, one loop over the blocks, then [LastStage] layers; intercepts the block calls.</summary>
            private static void CheckForward(INamedTypeSymbol type, Stages stages, SemanticModels models, List<InterceptionSpec> interceptions,
                List<DiagnosticInfo> diagnostics, CancellationToken cancellationToken)
            {
                if (stages.Field is not { } list) return;
                if (ForwardBody(type, models, m => m.Parameters.Length == 1, cancellationToken) is not { } forward)
                {
                    diagnostics.Add(Diagnostic(DiagnosticDescriptors.NotSequentialId, type.Locations.FirstOrDefault(), type.Name, type.Name, "declares no forward(x)", list.Name));
                    return;
                }
                if (forward.Body is not { } block) return;
                var (declaration, model) = (forward.Declaration, forward.Model);
                var walk = new ForwardWalk(type, stages, list, model, interceptions, diagnostics, cancellationToken);
                foreach (var statement in block.Operations)
                {
                    if (statement is IForEachLoopOperation loop && Instance(loop.Collection) is IFieldReferenceOperation f && SymbolEqualityComparer.Default.Equals(f.Field, list))
                    {
                        if (walk.LoopSeen) walk.Report(statement, "is a second loop over the blocks");
                        walk.LoopSeen = true;
                        walk.Block = loop.Locals.FirstOrDefault();
                        walk.Visit(loop.Body);
                        walk.Block = null;
                    }
                    else walk.Visit(statement);
                }
                if (!walk.LoopSeen)
                    diagnostics.Add(Diagnostic(DiagnosticDescriptors.NotSequentialId, declaration.Identifier.GetLocation(), "forward", type.Name, "never loops over the blocks", list.Name));
            }

            /// <summary>The operations a pipelined forward may contain, and the block calls it intercepts.</summary>
            private sealed class ForwardWalk(INamedTypeSymbol type, Stages stages, IFieldSymbol list, SemanticModel model,
                List<InterceptionSpec> interceptions, List<DiagnosticInfo> diagnostics, CancellationToken cancellationToken)
            {
                public bool LoopSeen;
                public ILocalSymbol? Block;

                public void Report(IOperation operation, string reason)
                {
                    var text = operation.Syntax.ToString();
                    if (text.Length > 60) text = text.Substring(0, 57) + "...";
                    diagnostics.Add(Diagnostic(DiagnosticDescriptors.NotSequentialId, operation.Syntax.GetLocation(), text, type.Name, reason, list.Name));
                }

                public void Visit(IOperation operation)
                {
                    switch (operation)
                    {
                        case IInvocationOperation invocation:
                            VisitInvocation(invocation);
                            return;
                        case IBlockOperation or IExpressionStatementOperation or IReturnOperation or ILocalReferenceOperation or IParameterReferenceOperation
                            or IArgumentOperation or IConversionOperation or IVariableDeclarationGroupOperation or IVariableDeclarationOperation
                            or IVariableDeclaratorOperation or IVariableInitializerOperation:
                            break;
                        case ISimpleAssignmentOperation { Target: ILocalReferenceOperation or IParameterReferenceOperation }:
                            break;
                        default:
                            Report(operation, Block is null ? "would run on every pipeline stage" : "is not a block.forward call");
                            return;
                    }
                    foreach (var child in operation.ChildOperations) Visit(child);
                }

                private void VisitInvocation(IInvocationOperation invocation)
                {
                    var method = invocation.TargetMethod;
                    var instance = Instance(invocation.Instance);
                    if (Block is not null)
                    {
                        if (instance is ILocalReferenceOperation local && SymbolEqualityComparer.Default.Equals(local.Local, Block) && method.Name == "forward"
                            && method.Parameters.Length == 1 && invocation.Syntax is InvocationExpressionSyntax call)
                        {
                            if (Intercept(InterceptionKind.BlockForward, new LayerSpec(list.Name, LayerPlacement.Default), method, call, model, cancellationToken) is { } spec)
                                interceptions.Add(spec);
                        }
                        else Report(invocation, "is not a block.forward call");
                    }
                    else if (instance is not IFieldReferenceOperation field || method.Name != "forward")
                        Report(invocation, "would run on every pipeline stage");
                    else if (stages.RoleOf(field.Field) is not { } role)
                        Report(invocation, $"calls '{field.Field.Name}', which has no [FirstStage] or [LastStage] marker, so it would run on every stage");
                    else if (role == (LoopSeen ? StageRole.First : StageRole.Last))
                        Report(invocation, LoopSeen ? "runs a [FirstStage] layer after the blocks" : "runs a [LastStage] layer before the blocks");
                    foreach (var argument in invocation.Arguments) Visit(argument);
                }
            }

            /// <summary>Whether a value flows (through conversions, ToArray/ToList and nn.ModuleList) into an assignment of <paramref name="field"/>.</summary>
            private static bool FlowsInto(IOperation operation, IFieldSymbol field)
            {
                var o = operation.Parent;
                for (int depth = 0; o is not null && depth < 8; depth++, o = o.Parent)
                {
                    switch (o)
                    {
                        case ISimpleAssignmentOperation { Target: IFieldReferenceOperation target }:
                            return SymbolEqualityComparer.Default.Equals(target.Field, field);
                        case IConversionOperation or IArgumentOperation or IInvocationOperation or IArrayCreationOperation or IArrayInitializerOperation:
                            continue;
                        default:
                            return false;
                    }
                }
                return false;
            }

            /// <summary>Any field of this class a factory call is assigned to (in a constructor or a field initializer).</summary>
            private static IFieldSymbol? AssignedAnyField(INamedTypeSymbol type, IOperation operation)
            {
                var parent = operation.Parent;
                while (parent is IConversionOperation) parent = parent.Parent;
                return parent switch
                {
                    ISimpleAssignmentOperation { Target: IFieldReferenceOperation target } assignment when IsConstructor(assignment) && Own(type, target.Field) => target.Field,
                    IFieldInitializerOperation initializer => initializer.InitializedFields.FirstOrDefault(f => Own(type, f)),
                    _ => null,
                };
            }

            /// <summary>
            /// The class's own <c>forward</c> (the first instance method of that name whose parameters <paramref name="accepts"/>),
            /// its semantic model and its body as operations (null when it does not bind); null when there is none.
            /// </summary>
            private static (MethodDeclarationSyntax Declaration, SemanticModel Model, IBlockOperation? Body)? ForwardBody(INamedTypeSymbol type, SemanticModels models,
                System.Func<IMethodSymbol, bool> accepts, CancellationToken cancellationToken)
            {
                var forward = type.GetMembers("forward").OfType<IMethodSymbol>().FirstOrDefault(m => !m.IsStatic && accepts(m));
                if (forward?.DeclaringSyntaxReferences.FirstOrDefault()?.GetSyntax(cancellationToken) is not MethodDeclarationSyntax declaration) return null;
                var model = models.Of(declaration.SyntaxTree);
                var body = model.GetOperation(declaration, cancellationToken) as IMethodBodyOperation;
                return (declaration, model, body?.BlockBody ?? body?.ExpressionBody);
            }

            /// <summary>The operation under any implicit or explicit conversions.</summary>
            private static IOperation? Instance(IOperation? operation)
            {
                while (operation is IConversionOperation conversion) operation = conversion.Operand;
                return operation;
            }
        }
    }
}
