using System;
using System.Collections.Generic;
using System.Linq;
using System.Threading;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.CSharp.Syntax;
using Microsoft.CodeAnalysis.Operations;
using ModelParallel.Generators.Model;

namespace ModelParallel.Generators
{
    public sealed partial class ParallelModuleGenerator
    {
        /// <summary>Reads a [ParallelModule] class into a <see cref="ModuleSpec"/>. Never throws.</summary>
        internal static partial class Parser
        {
            // Metadata names, resolved once per read as symbols (KnownTypes).
            private const string LinearType = "TorchSharp.Modules.Linear";
            private const string EmbeddingType = "TorchSharp.Modules.Embedding";
            private const string NnType = "TorchSharp.torch+nn";

            private static readonly SymbolDisplayFormat TypeFormat = SymbolDisplayFormat.FullyQualifiedFormat
                .AddMiscellaneousOptions(SymbolDisplayMiscellaneousOptions.IncludeNullableReferenceTypeModifier);

            private static readonly (string Metadata, string Short, LayerPlacement Placement)[] PlacementAttributes =
            {
                ("ModelParallel.ColumnParallelAttribute", "ColumnParallel", LayerPlacement.Column),
                ("ModelParallel.RowParallelAttribute", "RowParallel", LayerPlacement.Row),
                ("ModelParallel.ReplicatedAttribute", "Replicated", LayerPlacement.Replicated),
                ("ModelParallel.VocabParallelAttribute", "VocabParallel", LayerPlacement.Vocab),
            };

            /// <summary>
            /// Test seam: called before a class is read, so a test can make the parser fail on a class of its choosing and
            /// check that the failure becomes MP0099 instead of a crash. Null in normal use.
            /// </summary>
            internal static System.Action<INamedTypeSymbol>? FailureInjection;

            /// <summary>
            /// While the analyzer reads a class: it needs the diagnostics only, so call sites are not turned into
            /// interceptor specs (no display strings of signatures and places).
            /// </summary>
            [ThreadStatic] private static bool diagnosticsOnly;

            /// <summary>Reads a [ParallelModule] class; shared by the generator and the analyzer. Never throws.</summary>
            public static ModuleSpec Parse(INamedTypeSymbol type, Compilation compilation, CancellationToken cancellationToken) =>
                Parse(type, compilation, cancellationToken, forDiagnostics: false, out _);

            /// <summary>
            /// Reads a [ParallelModule] class, for its diagnostics alone when <paramref name="forDiagnostics"/>; <paramref name="read"/>
            /// is every tree the read bound. Never throws.
            /// </summary>
            public static ModuleSpec Parse(INamedTypeSymbol type, Compilation compilation, CancellationToken cancellationToken, bool forDiagnostics, out IEnumerable<SyntaxTree> read)
            {
                bool outer = diagnosticsOnly;
                diagnosticsOnly = forDiagnostics;
                var models = new SemanticModels(compilation);
                read = models.Trees;
                try
                {
                    FailureInjection?.Invoke(type);
                    return ParseModule(type, models, cancellationToken);
                }
                catch (Exception e) when (e is not OperationCanceledException)
                {
                    var diagnostic = new DiagnosticInfo(DiagnosticDescriptors.InternalErrorId, LocationInfo.From(type.Locations.FirstOrDefault()),
                        new[] { type.Name, $"{e.GetType().Name}: {e.Message}" }.ToEquatableArray());
                    return Empty(type, new[] { diagnostic });
                }
                finally
                {
                    diagnosticsOnly = outer;
                }
            }

            private static ModuleSpec ParseModule(INamedTypeSymbol type, SemanticModels models, CancellationToken cancellationToken)
            {
                var diagnostics = new List<DiagnosticInfo>();
                for (var t = type; t is not null; t = t.ContainingType)
                {
                    if (!IsPartial(t))
                        diagnostics.Add(Diagnostic(DiagnosticDescriptors.NotPartialId, t.Locations.FirstOrDefault(), t.Name));
                }
                if (diagnostics.Count > 0) return Empty(type, diagnostics);

                var layers = ReadLayers(type, models.Known, diagnostics);
                var stages = ReadStages(type, models.Known, diagnostics);
                var sizes = DeclaredSizes(type, models.Known);
                ReadFactorySizes(type, layers, models, cancellationToken);
                var facts = AnalyzePlacements(type, layers, sizes, models, diagnostics, cancellationToken);
                foreach (var pair in facts.Chunks)
                    if (layers.TryGetValue(pair.Key, out var chunked)) layers[pair.Key] = chunked with { Chunks = pair.Value };
                var interceptions = new List<InterceptionSpec>();
                var constructed = new HashSet<string>();
                var partitionedNames = new HashSet<string>(layers.Values.Where(IsPartitioned).Select(l => l.Field));
                foreach (var reference in type.DeclaringSyntaxReferences)
                {
                    var declaration = reference.GetSyntax(cancellationToken);
                    var model = models.Of(declaration.SyntaxTree);
                    foreach (var node in declaration.DescendantNodes(n => n == declaration || n is not TypeDeclarationSyntax))
                    {
                        cancellationToken.ThrowIfCancellationRequested();
                        // Only calls, method groups and mentions of a partitioned field matter here; asking for the operation of
                        // every node would bind each expression again.
                        if (node is IdentifierNameSyntax mention && partitionedNames.Contains(mention.Identifier.ValueText))
                        {
                            CheckFieldUse(type, layers, mention, model, diagnostics, cancellationToken);
                            continue;
                        }
                        if (node is not InvocationExpressionSyntax && !(node is MemberAccessExpressionSyntax && node.Parent is not InvocationExpressionSyntax)) continue;
                        switch (model.GetOperation(node, cancellationToken))
                        {
                            case IInvocationOperation invocation when node is InvocationExpressionSyntax call:
                                facts.Sites.TryGetValue(call, out var site);
                                if (SiteInterception(site, call) is { } planned)
                                {
                                    if (Intercept(planned.Kind, new LayerSpec(planned.Layer, LayerPlacement.Default), invocation.TargetMethod, call, model, cancellationToken) is { } spec)
                                        interceptions.Add(planned.Complete(spec));
                                }
                                else if (!ReadPipelineInvocation(type, layers, stages, invocation, call, model, models.Known, interceptions, cancellationToken))
                                    ReadInvocation(type, layers, stages, facts, sizes, invocation, call, model, models.Known, interceptions, constructed, diagnostics, cancellationToken);
                                break;
                            case IMethodReferenceOperation { Method.Name: "forward" or "call" } group when Instance(group.Instance)?.Type is INamedTypeSymbol sub
                                && ParallelModuleOf(sub, models.Known.ParallelModule) is not null
                                && (SequenceParallelDeclared(sub, models.Known.ParallelModule) is var sequence && sequence || ReturnedPlacement(sub, models, cancellationToken).Placement is not { Kind: ValueKind.Replicate }):
                                // Through a delegate the walk loses the sub-module's placements: its sharded output would read as whole.
                                diagnostics.Add(Diagnostic(DiagnosticDescriptors.BypassedPartitionId, node.GetLocation(),
                                    Receiver(group.Syntax), "used as a method group", sequence ? "sequence-parallel" : "[ParallelModule] output"));
                                break;
                            case IMethodReferenceOperation reference2 when PartitionedField(type, layers, reference2.Instance) is { } field:
                                diagnostics.Add(Diagnostic(DiagnosticDescriptors.BypassedPartitionId, node.GetLocation(),
                                    field.Field, "used as a method group", PlacementName(field.Placement)));
                                break;
                            case IPropertyReferenceOperation property when IsRankContext(property.Property.ContainingType, models.Known) && IsOutermostAccess(node, model, models.Known):
                                diagnostics.Add(Diagnostic(DiagnosticDescriptors.RankDependentId, node.GetLocation(), node.ToString(), type.Name));
                                break;
                            case IPropertyReferenceOperation parameter when parameter.Property.Name is "weight" or "bias"
                                && PartitionedField(type, layers, parameter.Instance) is { } owner && !IsVocabularyTie(type, layers, stages, parameter) && !IsTieTarget(type, layers, parameter):
                                diagnostics.Add(Diagnostic(DiagnosticDescriptors.DirectParameterUseId, node.GetLocation(),
                                    owner.Field, parameter.Property.Name, PlacementName(owner.Placement)));
                                break;
                        }
                    }
                }

                CheckForward(type, stages, models, interceptions, diagnostics, cancellationToken);
                if (stages.Field is { } list && !stages.BlocksBuilt)
                    diagnostics.Add(Diagnostic(DiagnosticDescriptors.StagesNotBuiltId, list.Locations.FirstOrDefault(), list.Name, type.Name));

                foreach (var layer in layers.Values.Where(l => IsPartitioned(l) && !constructed.Contains(l.Field)))
                {
                    var field = type.GetMembers(layer.Field).First();
                    diagnostics.Add(Diagnostic(DiagnosticDescriptors.LayerNotConstructedId, field.Locations.FirstOrDefault(),
                        layer.Field, PlacementName(layer.Placement), type.Name));
                }

                return new ModuleSpec(Namespace(type), ContainingTypes(type), type.Name, type.ToDisplayString(),
                    CanEmit: true, layers.Values.ToEquatableArray(), interceptions.ToEquatableArray(), diagnostics.ToEquatableArray(), stages.ToSpec(),
                    facts.Values.ToEquatableArray());
            }

            /// <summary>
            /// A partitioned layer is partitioned only where the generator sees it: its factory assignment and direct calls of
            /// its forward. Passed anywhere else (into nn.Sequential, a list, a helper, a local) its forward runs inside code
            /// the interceptors never see, with no communication: MP0004 at the mention.
            /// </summary>
            private static void CheckFieldUse(INamedTypeSymbol type, Dictionary<string, LayerSpec> layers, IdentifierNameSyntax mention, SemanticModel model,
                List<DiagnosticInfo> diagnostics, CancellationToken cancellationToken)
            {
                SyntaxNode reference = mention.Parent is MemberAccessExpressionSyntax { Expression: ThisExpressionSyntax } self && self.Name == mention ? self : mention;
                if (reference == mention && mention.Parent is MemberAccessExpressionSyntax qualified && qualified.Name == mention) return; // other.up: not our field
                if (model.GetSymbolInfo(mention, cancellationToken).Symbol is not IFieldSymbol field || !SymbolEqualityComparer.Default.Equals(field.ContainingType, type)) return;
                if (!layers.TryGetValue(field.Name, out var layer) || !IsPartitioned(layer)) return;
                switch (reference.Parent)
                {
                    case MemberAccessExpressionSyntax access when access.Expression == reference:
                        return; // up.forward(x), up.weight (MP0018), up.call (MP0004): judged where the access is read
                    case ConditionalAccessExpressionSyntax conditional when conditional.Expression == reference:
                        return; // up?.forward(x)
                    case AssignmentExpressionSyntax assignment when assignment.Left == reference:
                        return; // up = nn.Linear(...)
                    case ArgumentSyntax { Parent.Parent: InvocationExpressionSyntax { Expression: IdentifierNameSyntax { Identifier.ValueText: "nameof" } } }:
                        return;
                }
                diagnostics.Add(Diagnostic(DiagnosticDescriptors.BypassedPartitionId, reference.GetLocation(),
                    layer.Field, "passed on as a value (into a container, a helper or a variable), where its forward runs through code the generator never sees", PlacementName(layer.Placement)));
            }

            private static bool IsRankContext(INamedTypeSymbol? type, KnownTypes known) => known.Is(type, "ModelParallel.RankContext");

            /// <summary>
            /// One diagnostic per expression: <c>RankContext.Current.Rank</c> is reported once, at its whole extent (the outer
            /// access is visited too); under a call, <c>RankContext.Current.Axis(…)</c>, the call is not, so the inner one is.
            /// </summary>
            private static bool IsOutermostAccess(SyntaxNode node, SemanticModel model, KnownTypes known)
            {
                var child = node;
                var parent = node.Parent;
                // Through `!` and parentheses: `RankContext.Current!.Rank` is one access.
                while (parent is PostfixUnaryExpressionSyntax { RawKind: (int)SyntaxKind.SuppressNullableWarningExpression } or ParenthesizedExpressionSyntax)
                {
                    child = parent;
                    parent = parent.Parent;
                }
                // `RankContext.Current!.Mesh.Tp` is reported once, at its last access of a RankContext member.
                return parent is not MemberAccessExpressionSyntax outer || outer.Expression != child || outer.Parent is InvocationExpressionSyntax
                    || !IsRankContext(model.GetSymbolInfo(outer).Symbol?.ContainingType, known);
            }

            private static Dictionary<string, LayerSpec> ReadLayers(INamedTypeSymbol type, KnownTypes known, List<DiagnosticInfo> diagnostics)
            {
                var layers = new Dictionary<string, LayerSpec>();
                foreach (var field in type.GetMembers().OfType<IFieldSymbol>())
                {
                    var found = new List<(AttributeData Data, string Short, LayerPlacement Placement)>();
                    foreach (var attribute in field.GetAttributes())
                    {
                        foreach (var (metadata, shortName, placement) in PlacementAttributes)
                        {
                            if (known.Is(attribute.AttributeClass, metadata)) found.Add((attribute, shortName, placement));
                        }
                    }
                    bool isLinear = known.Is(field.Type, LinearType);
                    bool isEmbedding = known.Is(field.Type, EmbeddingType);
                    if (found.Count == 1 && found[0].Placement == LayerPlacement.Vocab && isEmbedding)
                    {
                        layers[field.Name] = new LayerSpec(field.Name, LayerPlacement.Vocab, HasBias: false);
                        continue;
                    }
                    if (found.Count > 0 && (!isLinear || found.Any(f => f.Placement == LayerPlacement.Vocab)))
                    {
                        var at = found[0].Data.ApplicationSyntaxReference?.GetSyntax().GetLocation() ?? field.Locations.FirstOrDefault();
                        diagnostics.Add(Diagnostic(DiagnosticDescriptors.UnsupportedLayerId, at, found[0].Short, field.Name, field.Type.ToDisplayString()));
                        continue;
                    }
                    if (found.Count > 1)
                    {
                        var at = found[1].Data.ApplicationSyntaxReference?.GetSyntax().GetLocation() ?? field.Locations.FirstOrDefault();
                        diagnostics.Add(Diagnostic(DiagnosticDescriptors.ConflictingPlacementsId, at, field.Name, string.Join(", ", found.Select(f => f.Short))));
                        continue;
                    }
                    bool partial = found.Count == 1 && found[0].Placement == LayerPlacement.Row
                        && found[0].Data.NamedArguments.Any(a => a.Key == "ReduceOutput" && a.Value.Value is false);
                    if (isLinear) layers[field.Name] = new LayerSpec(field.Name, found.Count == 1 ? found[0].Placement : LayerPlacement.Default, Partial: partial);
                }
                return layers;
            }

            private static void ReadInvocation(INamedTypeSymbol type, Dictionary<string, LayerSpec> layers, Stages stages, PlacementFacts facts, int[] sizes, IInvocationOperation invocation,
                InvocationExpressionSyntax call, SemanticModel model, KnownTypes known, List<InterceptionSpec> interceptions, HashSet<string> constructed,
                List<DiagnosticInfo> diagnostics, CancellationToken cancellationToken)
            {
                var method = invocation.TargetMethod;
                if (method.IsStatic && (method.Name == "Linear" || method.Name == "Embedding") && known.Is(method.ContainingType, NnType)
                    && method.Parameters.Length > 0 && method.Parameters[0].Type.SpecialType == SpecialType.System_Int64
                    && AssignedField(type, layers, invocation) is { } built && (built.Placement == LayerPlacement.Vocab) == (method.Name == "Embedding"))
                {
                    CheckDivisible(type, built, invocation, sizes, diagnostics);
                    if (Intercept(InterceptionKind.Factory, built, method, call, model, cancellationToken) is { } factory)
                    {
                        interceptions.Add(factory with { Role = stages.RoleOf(built.Field), Chunks = built.Chunks });
                        constructed.Add(built.Field);
                    }
                    return;
                }

                if (LayerField(type, layers, invocation.Instance) is not { } layer) return;
                if (method.Name == "forward" && method.Parameters.Length == 1 && (known.Is(method.ContainingType, LinearType) || known.Is(method.ContainingType, EmbeddingType)))
                {
                    if (Intercept(InterceptionKind.Forward, layer, method, call, model, cancellationToken) is { } forward)
                        interceptions.Add(forward with { Role = stages.RoleOf(layer.Field), Variant = facts.Sites.TryGetValue(call, out var site) && site is LayerSite variant ? variant.Variant : LayerVariant.Plain });
                }
                else if (method.Name == "call" && IsPartitioned(layer))
                {
                    diagnostics.Add(Diagnostic(DiagnosticDescriptors.BypassedPartitionId, call.GetLocation(),
                        layer.Field, "invoked through 'call'", PlacementName(layer.Placement)));
                }
            }

            /// <summary>
            /// The sizes each layer field is built with, as written (for the partition report and the placement walk),
            /// and whether a Linear has a bias (hasBias: false as a constant).
            /// </summary>
            private static void ReadFactorySizes(INamedTypeSymbol type, Dictionary<string, LayerSpec> layers, SemanticModels models, CancellationToken cancellationToken)
            {
                foreach (var reference in type.DeclaringSyntaxReferences)
                {
                    var declaration = reference.GetSyntax(cancellationToken);
                    var model = models.Of(declaration.SyntaxTree);
                    foreach (var call in declaration.DescendantNodes(n => n == declaration || n is not TypeDeclarationSyntax).OfType<InvocationExpressionSyntax>())
                    {
                        if (call.ArgumentList.Arguments.Count < 2 || model.GetOperation(call, cancellationToken) is not IInvocationOperation invocation) continue;
                        if (invocation.TargetMethod is not { IsStatic: true, Name: "Linear" or "Embedding" } method || !models.Known.Is(method.ContainingType, NnType)) continue;
                        if (AssignedField(type, layers, invocation) is not { } built) continue;
                        var hasBias = invocation.Arguments.FirstOrDefault(a => a.Parameter?.Name == "hasBias")?.Value.ConstantValue;
                        layers[built.Field] = built with
                        {
                            In = call.ArgumentList.Arguments[0].Expression.ToString(),
                            Out = call.ArgumentList.Arguments[1].Expression.ToString(),
                            HasBias = method.Name == "Linear" && !(hasBias is { HasValue: true, Value: false }),
                        };
                    }
                }
            }

            /// <summary>One semantic model per syntax tree for the whole read of a class, so its bodies are bound once.</summary>
            private sealed class SemanticModels(Compilation compilation)
            {
                private readonly Dictionary<SyntaxTree, SemanticModel> models = new();

                /// <summary>What each [ParallelModule] sub-module's forward returns, walked once per read of a class however often it is used.</summary>
                public Dictionary<ISymbol, ModuleOutput> Returned { get; } = new(SymbolEqualityComparer.Default);

                /// <summary>TorchSharp's and ModelParallel's types, resolved once per read.</summary>
                public KnownTypes Known { get; } = new(compilation);

                /// <summary>Every tree whose semantic model the read asked for: what its result depends on beyond the class's declarations.</summary>
                public IEnumerable<SyntaxTree> Trees => models.Keys;

                /// <summary>
                /// The tree's semantic model, one per compilation and tree for every read: a model keeps what it has bound, so
                /// a parent's walk of a sub-module's forward, or the analyzer's read after the generator's, binds nothing again.
                /// </summary>
                public SemanticModel Of(SyntaxTree tree)
                {
                    if (!models.TryGetValue(tree, out var model))
                        models[tree] = model = For(compilation, tree);
                    return model;
                }

                /// <summary>The one semantic model of <paramref name="tree"/> in <paramref name="compilation"/> that every read shares.</summary>
                public static SemanticModel For(Compilation compilation, SyntaxTree tree) =>
                    Shared.GetValue(compilation, static _ => new()).GetOrAdd(tree, t => compilation.GetSemanticModel(t));

                private static readonly System.Runtime.CompilerServices.ConditionalWeakTable<Compilation, System.Collections.Concurrent.ConcurrentDictionary<SyntaxTree, SemanticModel>> Shared = new();
            }

            /// <summary>
            /// The interception a site of the placement walk asks for: its kind, the layer name it reports, and what the site
            /// adds to the spec. Null for layer and pipeline calls and plain calls, which are read apart.
            /// </summary>
            private static (InterceptionKind Kind, string Layer, Func<InterceptionSpec, InterceptionSpec> Complete)? SiteInterception(Site? site, InvocationExpressionSyntax call) => site switch
            {
                DropoutSite dropout => (InterceptionKind.Dropout, "forward", spec => spec with { Sharded = dropout.Sharded }),
                VocabLossSite => (InterceptionKind.VocabLoss, "forward", spec => spec),
                SlicedAttentionSite attention => (InterceptionKind.SlicedAttention, "forward", spec => spec with { ShardDim = attention.HeadDim }),
                SequenceScatterSite => (InterceptionKind.SequenceScatter, Receiver(call), spec => spec),
                CheckedModuleSite => (InterceptionKind.CheckedModule, Receiver(call), spec => spec),
                ShardedNormSite norm => (InterceptionKind.ShardedNorm, Receiver(call), spec => spec with { ShardDim = norm.Dim }),
                ShapeSite shape => (InterceptionKind.ShardedView, "forward", spec => spec with { Shape = shape.Method, ShardDim = shape.Dim, InputShardDim = shape.InputDim }),
                _ => null,
            };

            /// <summary>The TensorParallelSizes declared on the class's [ParallelModule], if any.</summary>
            private static int[] DeclaredSizes(INamedTypeSymbol type, KnownTypes known)
            {
                var attribute = ParallelModuleOf(type, known.ParallelModule);
                var sizes = attribute?.NamedArguments.FirstOrDefault(a => a.Key == "TensorParallelSizes").Value;
                return sizes is { Kind: TypedConstantKind.Array, IsNull: false } array
                    ? array.Values.Select(v => v.Value is int i ? i : 1).Where(i => i > 1).Distinct().ToArray()
                    : Array.Empty<int>();
            }

            /// <summary>MP0010: a constant sharded Linear dimension not divisible by a declared tp size.</summary>
            private static void CheckDivisible(INamedTypeSymbol type, LayerSpec layer, IInvocationOperation factory, int[] sizes, List<DiagnosticInfo> diagnostics)
            {
                if (sizes.Length == 0 || layer.Placement is not (LayerPlacement.Column or LayerPlacement.Row or LayerPlacement.Vocab)) return;
                // The sharded size: Linear(in, out) shards out (Column) or in (Row); Embedding(num_embeddings, dim) its rows.
                var argument = factory.Arguments.FirstOrDefault(a => a.Parameter?.Ordinal == (layer.Placement == LayerPlacement.Column ? 1 : 0));
                if (argument?.Value.ConstantValue is not { HasValue: true, Value: { } value } || !long.TryParse(value.ToString(), out long size)) return;
                int parts = layer.Placement == LayerPlacement.Column ? layer.Chunks : 1;
                foreach (var tp in sizes.Where(tp => size % ((long)tp * parts) != 0).Take(1))
                {
                    var what = layer.Placement switch
                    {
                        LayerPlacement.Column => parts > 1 ? $"out_features (in {parts} parts)" : "out_features",
                        LayerPlacement.Row => "in_features",
                        _ => "num_embeddings",
                    };
                    diagnostics.Add(Diagnostic(DiagnosticDescriptors.NotDivisibleId, argument.Syntax.GetLocation(), what, size.ToString(),
                        $"{PlacementName(layer.Placement)} '{layer.Field}'", tp.ToString(), type.Name));
                }
            }

            private static InterceptionSpec? Intercept(InterceptionKind kind, LayerSpec layer, IMethodSymbol method,
                InvocationExpressionSyntax call, SemanticModel model, CancellationToken cancellationToken)
            {
                var location = model.GetInterceptableLocation(call, cancellationToken);
                if (location is null) return null; // not interceptable: the caller reports what that leaves undone
                if (diagnosticsOnly) return new InterceptionSpec(kind, layer.Field, layer.Placement, 0, "", "", "", null, default);
                var line = call.GetLocation().GetLineSpan();
                var where = $"{System.IO.Path.GetFileName(line.Path)}({line.StartLinePosition.Line + 1},{line.StartLinePosition.Character + 1})";
                var parameters = method.Parameters.Select(p => new ParameterSpec(p.Type.ToDisplayString(TypeFormat), p.Name)).ToEquatableArray();
                return new InterceptionSpec(kind, layer.Field, layer.Placement, location.Version, location.Data, where,
                    method.ReturnType.ToDisplayString(TypeFormat), method.IsStatic ? null : method.ContainingType.ToDisplayString(TypeFormat), parameters);
            }

            /// <summary>The receiver of <c>x.forward(...)</c> as written, for the comment above its interceptor.</summary>
            private static string Receiver(InvocationExpressionSyntax call) => Receiver(call.Expression);

            private static string Receiver(SyntaxNode expression) =>
                expression is MemberAccessExpressionSyntax access && access.Expression.ToString() is { Length: <= 40 } text ? text : "module";

            /// <summary>The layer field a factory call is assigned to (in a constructor or a field initializer).</summary>
            private static LayerSpec? AssignedField(INamedTypeSymbol type, Dictionary<string, LayerSpec> layers, IOperation operation)
            {
                var parent = operation.Parent;
                while (parent is IConversionOperation) parent = parent.Parent;
                return parent switch
                {
                    ISimpleAssignmentOperation { Target: IFieldReferenceOperation target } assignment
                        when IsConstructor(assignment) && Own(type, target.Field) => Layer(layers, target.Field),
                    IFieldInitializerOperation initializer => initializer.InitializedFields.Where(f => Own(type, f)).Select(f => Layer(layers, f)).FirstOrDefault(l => l is not null),
                    _ => null,
                };
            }

            /// <summary>The layer field of this class an instance expression reads, if any.</summary>
            private static LayerSpec? LayerField(INamedTypeSymbol type, Dictionary<string, LayerSpec> layers, IOperation? instance)
            {
                return Instance(instance) is IFieldReferenceOperation reference && Own(type, reference.Field) ? Layer(layers, reference.Field) : null;
            }

            /// <summary>The column- or row-parallel layer field an instance expression reads, if any.</summary>
            private static LayerSpec? PartitionedField(INamedTypeSymbol type, Dictionary<string, LayerSpec> layers, IOperation? instance) =>
                LayerField(type, layers, instance) is { } layer && IsPartitioned(layer) ? layer : null;

            /// <summary>
            /// <c>head.weight = embed.weight</c> in the constructor, with head [ColumnParallel] and embed [VocabParallel]: the
            /// tied LM head. Both hold rows [r·V/tp, (r+1)·V/tp) of the same [V, D] matrix on tp rank r (a ColumnParallel
            /// layer's out_features and a VocabParallel embedding's rows are split alike), so the tie is the single-device
            /// one, shard by shard; the head's forward returns its vocabulary slice, S(-1). Not across pipeline stages: each
            /// stage would keep and train its own copy.
            /// </summary>
            private static bool IsVocabularyTie(INamedTypeSymbol type, Dictionary<string, LayerSpec> layers, Stages stages, IPropertyReferenceOperation parameter)
            {
                if (parameter.Property.Name != "weight" || parameter.Parent is not ISimpleAssignmentOperation assignment || !IsConstructor(assignment)) return false;
                return assignment.Target is IPropertyReferenceOperation { Property.Name: "weight" } target && assignment.Value is IPropertyReferenceOperation { Property.Name: "weight" } value
                    && PartitionedField(type, layers, target.Instance) is { Placement: LayerPlacement.Column, Chunks: 1 } head
                    && PartitionedField(type, layers, value.Instance) is { Placement: LayerPlacement.Vocab } embedding
                    && stages.RoleOf(head.Field) == stages.RoleOf(embedding.Field);
            }

            /// <summary>The target of <c>a.weight = b.weight</c> when b's is partitioned too: the tie is reported once, at b.</summary>
            private static bool IsTieTarget(INamedTypeSymbol type, Dictionary<string, LayerSpec> layers, IPropertyReferenceOperation parameter) =>
                parameter.Parent is ISimpleAssignmentOperation assignment && assignment.Target == parameter
                && assignment.Value is IPropertyReferenceOperation { Property.Name: "weight" or "bias" } value && PartitionedField(type, layers, value.Instance) is not null;

            private static bool IsPartitioned(LayerSpec layer) => layer.Placement is LayerPlacement.Column or LayerPlacement.Row or LayerPlacement.Vocab;

            private static bool IsConstructor(IOperation operation)
            {
                for (var o = operation; o is not null; o = o.Parent)
                {
                    if (o is IConstructorBodyOperation) return true;
                    if (o is IMethodBodyOperation or ILocalFunctionOperation or IAnonymousFunctionOperation) return false;
                }
                return false;
            }

            private static bool Own(INamedTypeSymbol type, IFieldSymbol field) => SymbolEqualityComparer.Default.Equals(field.ContainingType, type);

            private static LayerSpec? Layer(Dictionary<string, LayerSpec> layers, IFieldSymbol field) =>
                layers.TryGetValue(field.Name, out var layer) ? layer : null;

            private static bool IsPartial(INamedTypeSymbol type) =>
                type.DeclaringSyntaxReferences.All(r => r.GetSyntax() is TypeDeclarationSyntax d && d.Modifiers.Any(SyntaxKind.PartialKeyword));

            private static string? Namespace(INamedTypeSymbol type) =>
                type.ContainingNamespace.IsGlobalNamespace ? null : type.ContainingNamespace.ToDisplayString();

            private static EquatableArray<string> ContainingTypes(INamedTypeSymbol type)
            {
                var names = new List<string>();
                for (var t = type.ContainingType; t is not null; t = t.ContainingType) names.Insert(0, t.Name);
                return names.ToEquatableArray();
            }

            internal static string PlacementName(LayerPlacement placement) => placement switch
            {
                LayerPlacement.Column => "ColumnParallel",
                LayerPlacement.Row => "RowParallel",
                LayerPlacement.Replicated => "Replicated",
                LayerPlacement.Vocab => "VocabParallel",
                _ => "replicated (default)",
            };

            private static ModuleSpec Empty(INamedTypeSymbol type, IEnumerable<DiagnosticInfo> diagnostics) =>
                new(Namespace(type), ContainingTypes(type), type.Name, type.ToDisplayString(), CanEmit: false,
                    EquatableArray<LayerSpec>.Empty, EquatableArray<InterceptionSpec>.Empty, diagnostics.ToEquatableArray());

            private static DiagnosticInfo Diagnostic(string id, Location? location, params string[] arguments) =>
                new(id, LocationInfo.From(location), arguments.ToEquatableArray());
        }
    }
}
