using System.Collections.Generic;
using System.Linq;
using System.Threading;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.Operations;
using ModelParallel.Generators.Model;

namespace ModelParallel.Generators
{
    public sealed partial class ParallelModuleGenerator
    {
        internal static partial class Parser
        {
            /// <summary>
            /// Follows the tp placement of every tensor value through forward (locals, expressions, branches, loops and the
            /// class's own helper methods) and reports what it cannot prove. This part holds the statements, the dispatch
            /// of calls to the rules of each family (LayerRules, ViewRules, ElementwiseRules, ReductionRules,
            /// AttentionRules, LossRules) and what they share; a value the walk cannot place is a diagnostic, never a guess.
            /// </summary>
            private sealed partial class PlacementWalk(INamedTypeSymbol type, Dictionary<string, LayerSpec> layers, int[] sizes, PlacementFacts facts,
                List<DiagnosticInfo> diagnostics, SemanticModels models, SequenceParallelism sequence, CancellationToken cancellationToken)
            {
                private Dictionary<ISymbol, Value> values = new(SymbolEqualityComparer.Default);

                /// <summary>The returns of the helper method being walked; null while walking forward itself.</summary>
                private List<Value>? helperReturns;

                /// <summary>Helper methods being walked (a recursive helper is refused).</summary>
                private readonly HashSet<IMethodSymbol> helpers = new(SymbolEqualityComparer.Default);

                private KnownTypes Known => models.Known;

                /// <summary>A sequence-parallel module's forward takes its first tensor input as the residual stream, split along the sequence: S(-2).</summary>
                public void EnterSequenceSharded(IMethodSymbol forward)
                {
                    // The first tensor input is the stream; any other (a mask, positions) is whole.
                    if (forward.Parameters.FirstOrDefault(p => IsTensor(p.Type)) is { } stream) values[stream] = Value.Shard(-2);
                }

                public void Statement(IOperation? operation)
                {
                    cancellationToken.ThrowIfCancellationRequested();
                    switch (operation)
                    {
                        case null:
                            return;
                        case IBlockOperation block:
                            foreach (var s in block.Operations) Statement(s);
                            return;
                        case IVariableDeclarationGroupOperation group:
                            foreach (var declarator in group.Declarations.SelectMany(d => d.Declarators))
                            {
                                var initializer = declarator.Initializer?.Value ?? declarator.GetVariableInitializer()?.Value;
                                if (initializer is not null) Record(declarator.Symbol, Eval(initializer));
                            }
                            return;
                        case IReturnOperation ret:
                            Return(ret);
                            return;
                        case IConditionalOperation conditional:
                            Branches(conditional);
                            return;
                        case ILoopOperation loop:
                            Loop(loop);
                            return;
                        case IExpressionStatementOperation expression:
                            Eval(expression.Operation);
                            return;
                        case ILocalFunctionOperation function:
                            Closure(function);
                            return;
                        default:
                            foreach (var child in operation.ChildOperations) Statement(child);
                            return;
                    }
                }

                private void Return(IReturnOperation ret)
                {
                    var returned = Eval(ret.ReturnedValue);
                    if (helperReturns is not null)
                    {
                        helperReturns.Add(returned);
                        return;
                    }
                    if (returned.IsTensor) facts.Values.Add(new ValueSpec("(returned)", returned.Placement, IsReturn: true));
                    if (returned.IsPartial)
                        Report(DiagnosticDescriptors.PartialEscapesId, ret.ReturnedValue!.Syntax, Text(ret.ReturnedValue), returned.Origin ?? "?");
                }

                /// <summary>Both branches are walked from the same state; a value placed differently after each is refused.</summary>
                private void Branches(IConditionalOperation conditional)
                {
                    Eval(conditional.Condition);
                    var before = new Dictionary<ISymbol, Value>(values, SymbolEqualityComparer.Default);
                    Statement(conditional.WhenTrue);
                    var whenTrue = values;
                    values = new Dictionary<ISymbol, Value>(before, SymbolEqualityComparer.Default);
                    Statement(conditional.WhenFalse);
                    foreach (var pair in whenTrue)
                    {
                        if (values.TryGetValue(pair.Key, out var other) && !other.SamePlacement(pair.Value))
                            Report(DiagnosticDescriptors.UnsupportedShardedOperationId, conditional.Syntax, Text(conditional),
                                $"'{pair.Key.Name}' is {pair.Value} after one branch and {other} after the other; its placement must not depend on the branch taken");
                        else values[pair.Key] = other.NoGrad && pair.Value.NoGrad ? pair.Value : pair.Value.MayNeedGrad();
                    }
                }

                /// <summary>
                /// The body is walked once from the state before the loop. A value whose placement that pass changes would enter
                /// the second iteration placed otherwise than the first, so the loop is refused; when nothing changes, every
                /// further pass sees what the first saw.
                /// </summary>
                private void Loop(ILoopOperation loop)
                {
                    if (loop is IForLoopOperation forLoop)
                        foreach (var before in forLoop.Before) Statement(before);
                    if (loop is IForEachLoopOperation each)
                    {
                        var collection = Eval(each.Collection);
                        if (collection.IsArray)
                            foreach (var local in each.Locals) Record(local, collection.Element);
                        else if (collection.IsPlaced)
                            Unsupported(each.Collection, collection, "iterating a sharded or partial tensor gives its local rows");
                    }
                    var entry = new Dictionary<ISymbol, Value>(values, SymbolEqualityComparer.Default);
                    if (loop is IForLoopOperation { Condition: { } condition }) Eval(condition);
                    if (loop is IWhileLoopOperation { Condition: { } whileCondition }) Eval(whileCondition);
                    Statement(loop.Body);
                    if (loop is IForLoopOperation forBottom)
                        foreach (var bottom in forBottom.AtLoopBottom) Statement(bottom);
                    foreach (var pair in entry)
                    {
                        if (values.TryGetValue(pair.Key, out var after) && !after.SamePlacement(pair.Value))
                            Report(DiagnosticDescriptors.UnsupportedShardedOperationId, loop.Syntax, Text(loop),
                                $"'{pair.Key.Name}' is {pair.Value} when the loop starts and {after} after one pass, so the next pass would see it placed otherwise; keep its placement the same on every iteration");
                        else if (after.IsTensor && pair.Value.NoGrad && !after.NoGrad)
                            Report(DiagnosticDescriptors.UnsupportedShardedOperationId, loop.Syntax, Text(loop),
                                $"'{pair.Key.Name}' needs no gradient when the loop starts and may need one after a pass, so the next pass would see it otherwise; keep it gradient-free on every iteration, or compute it before the loop");
                    }
                }

                private Value Eval(IOperation? operation)
                {
                    var value = EvalPlacement(operation);
                    if (operation is null) return value;
                    if (value.IsReplicated && !value.NoGrad && NeedsNoGradient(operation)) value = value.AsNoGrad();
                    evaluated[operation] = value;
                    return value;
                }

                private Value EvalPlacement(IOperation? operation)
                {
                    switch (operation)
                    {
                        case null:
                            return Value.None;
                        case IConversionOperation conversion:
                            return Eval(conversion.Operand);
                        case IParenthesizedOperation parenthesized:
                            return Eval(parenthesized.Operand);
                        case ILocalReferenceOperation local:
                            return Local(local, local.Local);
                        case IParameterReferenceOperation parameter:
                            return values.TryGetValue(parameter.Parameter, out var p) ? p : Default(parameter.Type);
                        case ISimpleAssignmentOperation assignment:
                        {
                            var value = Eval(assignment.Value);
                            if (Symbol(assignment.Target) is { } target) Record(target, value);
                            else if (assignment.Target is not ILocalReferenceOperation && value.IsPlaced && assignment.Target is IFieldReferenceOperation or IPropertyReferenceOperation)
                                Unsupported(assignment, value, "a sharded or partial value stored outside forward's locals leaves the walk; keep it in a local");
                            return value;
                        }
                        case ICompoundAssignmentOperation compound:
                        {
                            var value = Binary(compound, compound.OperatorKind, Eval(compound.Target), Eval(compound.Value));
                            if (Symbol(compound.Target) is { } target) values[target] = value;
                            return value;
                        }
                        case IBinaryOperation binary:
                            return Binary(binary, binary.OperatorKind, Eval(binary.LeftOperand), Eval(binary.RightOperand));
                        case IUnaryOperation unary:
                            return Unary(unary, Eval(unary.Operand));
                        case IArrayElementReferenceOperation { ArrayReference: IPropertyReferenceOperation { Property.Name: "shape" } shape } element
                            when shape.Instance is { } tensor && IsTensor(tensor.Type):
                            ShapeRead(element, Eval(tensor), element.Indices.Length == 1 ? element.Indices[0] : null);
                            return Default(element.Type);
                        case IPropertyReferenceOperation { Property.Name: "shape", Instance: { } whole } read when IsTensor(whole.Type):
                            ShapeRead(read, Eval(whole), index: null);
                            return Default(read.Type);
                        case IPropertyReferenceOperation { Property.Name: "Length", Instance: { } array } length when Eval(array).IsArray:
                            return Value.None;
                        case IArrayElementReferenceOperation element:
                        {
                            var array = Eval(element.ArrayReference);
                            return array.IsArray ? array.Element : Default(element.Type);
                        }
                        case IInvocationOperation invocation:
                            return Produced(invocation, Invocation(invocation));
                        case IAnonymousFunctionOperation lambda:
                            Closure(lambda);
                            return Value.None;
                        case IDeconstructionAssignmentOperation deconstruction:
                            return Deconstruct(deconstruction);
                        default:
                            var children = operation.ChildOperations.Select(Eval).ToList();
                            if (children.Any(c => c.IsPlaced) && IsTensor(operation.Type))
                                return Unsupported(operation, children.First(c => c.IsPlaced), "this operation has no placement rule");
                            if (children.Any(c => c.IsPlaced) && HoldsTensors(operation.Type))
                                return Unsupported(operation, children.First(c => c.IsPlaced), "a sharded or partial value inside a tuple or a collection leaves the walk; keep it in a tensor local");
                            return Default(operation.Type);
                    }
                }

                /// <summary>A local the walk has not seen assigned holds no value it can place: refused when it is a tensor.</summary>
                private Value Local(IOperation at, ILocalSymbol local)
                {
                    if (values.TryGetValue(local, out var known)) return known;
                    if (IsTensor(local.Type))
                        return Unsupported(at, Value.Replicated(), $"the walk cannot tell how '{local.Name}' got its value (an out argument, a pattern or a lambda), so it cannot place it; assign it with '='");
                    return Default(local.Type);
                }

                /// <summary><c>var (a, b) = parts</c> of a chunk or split: each local gets the parts' placement.</summary>
                private Value Deconstruct(IDeconstructionAssignmentOperation deconstruction)
                {
                    var target = deconstruction.Target is IDeclarationExpressionOperation declaration ? declaration.Expression : deconstruction.Target;
                    var source = Instance(deconstruction.Value);
                    // (a, b) = (x, y): each part from its own expression; (a, b) = parts of a chunk: each gets the parts' placement.
                    var parts = source is ITupleOperation written && target is ITupleOperation t && written.Elements.Length == t.Elements.Length
                        ? written.Elements.Select(Eval).ToList() : null;
                    var value = parts is null ? Eval(deconstruction.Value) : Value.None;
                    if (target is not ITupleOperation tuple) return Value.None;
                    for (int i = 0; i < tuple.Elements.Length; i++)
                    {
                        var element = tuple.Elements[i];
                        var symbol = element switch
                        {
                            IDeclarationExpressionOperation { Expression: ILocalReferenceOperation l } => l.Local,
                            _ => Symbol(element),
                        };
                        if (symbol is null) continue;
                        if (parts is not null) Record(symbol, parts[i]);
                        else if (value.IsArray) Record(symbol, value.Element);
                        // Anything else (a tuple a method returns) was refused where a placed value went in; from whole values, whole.
                        else Record(symbol, value.IsPlaced ? value : Default(element.Type));
                    }
                    return Value.None;
                }

                private Value Invocation(IInvocationOperation invocation)
                {
                    var method = invocation.TargetMethod;
                    var name = method.Name;
                    var arguments = invocation.Arguments.Select(a => Eval(a.Value)).ToList();
                    var instance = invocation.Instance is null ? Value.None : Eval(invocation.Instance);
                    var input = arguments.FirstOrDefault();

                    // A layer or sub-module call: this.field.forward(x), or block.forward(x) in a loop.
                    if (name == "forward" && arguments.Count == 1 && Instance(invocation.Instance) is { } receiver && !IsTensor(receiver.Type))
                    {
                        if (receiver is IFieldReferenceOperation field && SymbolEqualityComparer.Default.Equals(field.Field.ContainingType, type)
                            && layers.TryGetValue(field.Field.Name, out var layer))
                            return LinearForward(invocation, layer, input);
                        return ModuleForward(invocation, receiver.Type!, input);
                    }

                    // A [ParallelModule] sub-module's forward, with any number of inputs, or through call(...) (forward with its
                    // hooks): its output placement holds for every form. Inputs after the first must be whole.
                    if (name is "forward" or "call" && arguments.Count >= 1 && Instance(invocation.Instance) is { Type: INamedTypeSymbol callee } && IsParallelModule(callee))
                    {
                        if (arguments.Skip(1).FirstOrDefault(a => a.IsPlaced) is { IsPlaced: true } extra)
                            return Unsupported(invocation, extra, $"[ParallelModule] '{callee.Name}' takes whole (R) values after its first input");
                        return ModuleForward(invocation, callee, input);
                    }

                    if (IsHelper(method)) return Helper(invocation, method, arguments);

                    if (SymbolEqualityComparer.Default.Equals(method.ContainingType, Known.Tensor) && !method.IsStatic)
                        return ViewMethod(invocation, name, instance, arguments)
                            ?? ElementwiseMethod(invocation, name, instance, arguments)
                            ?? ReductionMethod(invocation, name, instance)
                            ?? AttentionMethod(invocation, name, instance, arguments)
                            ?? NoRule(invocation, $"Tensor.{name}", arguments.Prepend(instance));

                    if (Known.IsTorchFunctions(method.ContainingType))
                        return ViewFunction(invocation, name, arguments)
                            ?? ElementwiseFunction(invocation, name, arguments)
                            ?? ReductionFunction(invocation, name, arguments)
                            ?? AttentionFunction(invocation, name, arguments)
                            ?? LossFunction(invocation, name, arguments)
                            ?? Factory(invocation, name)
                            ?? NoRule(invocation, name, arguments);

                    return NoRule(invocation, name, arguments.Prepend(instance));
                }

                /// <summary>A call with no placement rule: refused when a sharded or partial value goes in and a tensor comes out.</summary>
                private Value NoRule(IInvocationOperation call, string name, IEnumerable<Value> inputs)
                {
                    var placed = inputs.Where(a => a.IsPlaced).ToList();
                    if (placed.Count > 0 && IsTensor(call.Type))
                        return Unsupported(call, placed[0], $"'{name}' has no placement rule");
                    if (placed.Count > 0 && !Metadata.Contains(call.TargetMethod.Name))
                    {
                        Unsupported(call, placed[0], $"'{name}' reads the local tensor (on each rank its shard or summand, not one device's value) or carries it where the walk cannot follow");
                        return Default(call.Type); // reported once: the number or tuple it gives is not followed further
                    }
                    return Default(call.Type);
                }

                /// <summary>What a sharded or partial tensor can tell that is the same on every rank and on one device.</summary>
                private static readonly HashSet<string> Metadata = new() { "dim", "ndimension", "device", "dtype", "is_contiguous", "requires_grad", "Dispose", "GetType" };

                /// <summary>A value that holds tensors the walk does not follow into (a tuple, a collection).</summary>
                private bool HoldsTensors(ITypeSymbol? t) =>
                    t is INamedTypeSymbol named && (named.IsTupleType ? named.TupleElements.Any(e => IsTensor(e.Type) || HoldsTensors(e.Type)) : named.TypeArguments.Any(a => IsTensor(a) || HoldsTensors(a)));

                /// <summary>A method of this class with a body, other than forward: walked with the placements of its arguments.</summary>
                private bool IsHelper(IMethodSymbol method) =>
                    SymbolEqualityComparer.Default.Equals(method.ContainingType, type) && method.Name != "forward"
                    && method.DeclaringSyntaxReferences.Length > 0 && method.MethodKind == MethodKind.Ordinary;

                private Value Helper(IInvocationOperation call, IMethodSymbol method, List<Value> arguments)
                {
                    var body = method.DeclaringSyntaxReferences[0].GetSyntax(cancellationToken) is var syntax
                        ? models.Of(syntax.SyntaxTree).GetOperation(syntax, cancellationToken) as IMethodBodyOperation : null;
                    var block = body?.BlockBody ?? body?.ExpressionBody;
                    var placed = arguments.FirstOrDefault(a => a.IsPlaced);
                    if (block is null || !helpers.Add(method))
                        return placed.IsPlaced ? Unsupported(call, placed, $"'{method.Name}' calls itself or has no body the walk can read") : Default(call.Type);
                    var (outerValues, outerReturns) = (values, helperReturns);
                    values = new Dictionary<ISymbol, Value>(SymbolEqualityComparer.Default);
                    foreach (var (argument, value) in call.Arguments.Zip(arguments, (a, v) => (a, v)))
                        if (argument.Parameter is { } parameter) values[parameter] = value;
                    helperReturns = new List<Value>();
                    try
                    {
                        Statement(block);
                        var returns = helperReturns;
                        if (!IsTensor(call.Type) && !(call.Type is IArrayTypeSymbol array && IsTensor(array.ElementType)))
                            return placed.IsPlaced && HoldsTensors(call.Type)
                                ? Unsupported(call, placed, $"'{method.Name}' returns tensors in a tuple or a collection, which the walk does not follow; return one tensor")
                                : Value.None;
                        if (returns.Count == 0) return Default(call.Type);
                        if (returns.Any(r => !r.SamePlacement(returns[0])))
                            return Unsupported(call, returns.First(r => r.IsPlaced), $"'{method.Name}' returns differently placed values from different returns");
                        var first = returns[0];
                        return returns.All(r => r.Rank == first.Rank) ? first : first.With(null);
                    }
                    finally
                    {
                        (values, helperReturns) = (outerValues, outerReturns);
                        helpers.Remove(method);
                    }
                }

                private void Record(ISymbol symbol, Value value)
                {
                    values[symbol] = value;
                    if (value.IsTensor && helperReturns is null) facts.Values.Add(new ValueSpec(symbol.Name, value.Placement, EachPart: value.IsArray));
                }

                /// <summary>
                /// Records what a call site needs. A site reached twice (a helper called with differently placed arguments) must
                /// need the same both times: one interceptor serves every call of that line.
                /// </summary>
                private void SetSite(IOperation call, Site site)
                {
                    if (facts.Sites.TryGetValue(call.Syntax, out var earlier) && earlier != site)
                        Report(DiagnosticDescriptors.UnsupportedShardedOperationId, call.Syntax, Text(call),
                            "is reached with differently placed inputs (a helper called from two places?), and one call site can carry only one partition; give each placement its own call");
                    facts.Sites[call.Syntax] = site;
                }

                private static Value Keep(Value value) => new(value.Kind, value.Dim, value.Rank, value.IsPartial ? value.Origin : null);

                /// <summary>MP0012, and the value carried on as whole so one mistake gives one diagnostic.</summary>
                private Value NonLinear(IOperation operation, Value partial, string what, string why)
                {
                    Report(DiagnosticDescriptors.PartialNonLinearId, operation.Syntax, Text(operation), what, partial.Origin ?? "?", why);
                    return Value.Replicated(partial.Rank);
                }

                /// <summary>
                /// A dimension counted from the start, on a sharded value whose number of dimensions the walk does not know:
                /// it cannot tell whether it is the sharded one, so it refuses instead of guessing.
                /// </summary>
                private static bool Unplaceable(int dim, Value value) => value.IsSharded && dim >= 0 && value.Rank is null;

                private Value UnknownRank(IOperation operation, Value value, int dim) =>
                    Unsupported(operation, value, $"dimension {dim} is counted from the start, but the value's number of dimensions is not known here, so it may be the sharded one; count it from the end (-1, -2, ...) or give the value a known rank with a view of its sizes written out");

                /// <summary>Reports the operation and carries the offending placement on, so one mistake gives one diagnostic.</summary>
                private Value Unsupported(IOperation operation, Value value, string why)
                {
                    Report(DiagnosticDescriptors.UnsupportedShardedOperationId, operation.Syntax, Text(operation), $"on a value placed {value}: {why}");
                    return new Value(value.Kind, value.Dim, value.Rank);
                }

                private void Report(string id, SyntaxNode at, params string[] arguments) => diagnostics.Add(Diagnostic(id, at.GetLocation(), arguments));

                private static string Text(IOperation operation) => Trim(operation.Syntax.ToString());

                private static string Trim(string text)
                {
                    var line = text.Split('\n')[0].TrimEnd('\r', ' ', '{');
                    return line.Length > 60 ? line.Substring(0, 57) + "..." : line;
                }

                private static ISymbol? Symbol(IOperation target) => target switch
                {
                    ILocalReferenceOperation local => local.Local,
                    IParameterReferenceOperation parameter => parameter.Parameter,
                    _ => null,
                };

                private bool IsTensor(ITypeSymbol? t) => Known.IsTensor(t);

                private Value Default(ITypeSymbol? t) =>
                    t is IArrayTypeSymbol array && Known.IsTensor(array.ElementType) ? Value.Replicated().AsArray : IsTensor(t) ? Value.Replicated() : Value.None;

                /// <summary>The number of sizes a params-array call such as view(b, t, h, d) passes, when written out.</summary>
                private static int? ParamsCount(IInvocationOperation call) =>
                    call.Arguments.FirstOrDefault() is { ArgumentKind: ArgumentKind.ParamArray, Value: IArrayCreationOperation { Initializer: { } initializer } }
                        ? initializer.ElementValues.Length : null;

                /// <summary>The constant values of the array argument at <paramref name="ordinal"/> (a params list such as permute(0, 2, 1, 3)), when all are constants.</summary>
                private static int[]? Constants(IInvocationOperation call, int ordinal = 0)
                {
                    if (call.Arguments.FirstOrDefault(a => a.Parameter?.Ordinal == ordinal)?.Value is not IArrayCreationOperation { Initializer: { } initializer }) return null;
                    var constants = new List<int>();
                    foreach (var element in initializer.ElementValues)
                    {
                        if (element.ConstantValue is not { HasValue: true, Value: { } v } || !long.TryParse(v.ToString(), out long n)) return null;
                        constants.Add((int)n);
                    }
                    return constants.ToArray();
                }

                /// <summary>The constant integer value of the call's argument at <paramref name="ordinal"/>, if it is one.</summary>
                private static int? Constant(IInvocationOperation call, int ordinal) =>
                    call.Arguments.FirstOrDefault(a => a.Parameter?.Ordinal == ordinal)?.Value is { } value ? ConstantOf(value) : null;

                /// <summary>The constant integer an operation evaluates to, through conversions (a nullable long parameter given 1).</summary>
                private static int? ConstantOf(IOperation operation)
                {
                    var constant = operation.ConstantValue;
                    while (!constant.HasValue && operation is IConversionOperation conversion) constant = (operation = conversion.Operand).ConstantValue;
                    return constant is { HasValue: true, Value: not null } && long.TryParse(constant.Value.ToString(), out var v) ? (int)v : null;
                }

                /// <summary>The constant boolean argument named <paramref name="name"/> (an omitted optional one gives its default); null when not constant, false when there is none.</summary>
                private static bool? Flag(IInvocationOperation call, string name)
                {
                    var argument = call.Arguments.FirstOrDefault(a => a.Parameter?.Name == name);
                    if (argument is null) return false;
                    return argument.Value.ConstantValue is { HasValue: true, Value: bool b } ? b : null;
                }

                private static int Normalize(int dim, int? rank) => dim < 0 || rank is null ? dim : dim - rank.Value;

                /// <summary>The rank of a broadcast of two values, when both are known.</summary>
                private static int? Broadcast(int? a, int? b) => a is { } x && b is { } y ? System.Math.Max(x, y) : null;
            }
        }
    }
}
