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
            private const string TensorType = "TorchSharp.torch.Tensor";

            /// <summary>The placement of a tensor value over tp: R, S(dim) with dim counted from the end, or P.</summary>
            private readonly struct Value
            {
                public Value(char kind, int dim = 0, int? rank = null, string? origin = null, bool array = false, string? size = null)
                {
                    Kind = kind;
                    Dim = dim;
                    Rank = rank;
                    Origin = origin;
                    IsArray = array;
                    Size = size;
                }

                /// <summary>The logical size of the sharded dimension as written in the source (a ColumnParallel layer's out_features), when known.</summary>
                public string? Size { get; }

                /// <summary>'-' not a tensor, 'R', 'S' or 'P'.</summary>
                public char Kind { get; }

                /// <summary>The sharded dimension, negative (from the end), for 'S'.</summary>
                public int Dim { get; }

                /// <summary>The number of dimensions, when known.</summary>
                public int? Rank { get; }

                /// <summary>The ColumnParallel field whose output this is, unchanged (a fused projection's chunks need it).</summary>
                public string? Origin { get; }

                /// <summary>An array of tensors, each with this placement (the result of chunk or split).</summary>
                public bool IsArray { get; }

                public bool IsSharded => Kind == 'S';

                public static Value None => new('-');

                public static Value Replicated(int? rank = null) => new('R', 0, rank);

                public Value With(int? rank) => new(Kind, Dim, rank, Kind == 'P' ? Origin : null, IsArray, Size);

                public override string ToString() => Kind switch { 'S' => $"S({Dim})", 'P' => "P", 'R' => "R", _ => "not a tensor" };
            }

            /// <summary>What the placement walk found: call sites that need a variant, chunked ColumnParallel layers.</summary>
            private sealed class PlacementFacts
            {
                public readonly Dictionary<SyntaxNode, string> Sites = new();
                public readonly Dictionary<string, int> Chunks = new();
                public readonly List<ValueSpec> Values = new();
            }

            /// <summary>
            /// Follows the tp placement of every tensor value through forward (locals, expressions, conditionals, loops)
            /// and reports what cannot be partitioned. Returns the call sites the emitter must treat specially.
            /// </summary>
            private static PlacementFacts AnalyzePlacements(INamedTypeSymbol type, Dictionary<string, LayerSpec> layers, int[] sizes, SemanticModels models,
                List<DiagnosticInfo> diagnostics, CancellationToken cancellationToken)
            {
                var facts = new PlacementFacts();
                if (ForwardBody(type, models, m => m.Parameters.Length >= 1, cancellationToken) is { Body: { } block })
                    new PlacementWalk(type, layers, sizes, facts, diagnostics, models, cancellationToken).Statement(block);
                return facts;
            }

            /// <summary>[ParallelModule] types whose forward is being walked on this thread: a module that contains itself stops the recursion.</summary>
            [System.ThreadStatic] private static HashSet<ISymbol>? walking;

            /// <summary>
            /// The placement a [ParallelModule] sub-module's forward returns for a whole input, from a walk of its own forward
            /// (its diagnostics are its own to report): a parent must not take a sharded output for a whole one. Null when the
            /// sub-module's source is not in this compilation, or its forward is being walked already.
            /// </summary>
            private static string? ReturnedPlacement(INamedTypeSymbol module, SemanticModels models, CancellationToken cancellationToken)
            {
                if (module.DeclaringSyntaxReferences.Length == 0 || !module.GetAttributes().Any(a => a.AttributeClass?.ToDisplayString() == ParallelModuleAttribute)) return null;
                if (models.Returned.TryGetValue(module, out var known)) return known;
                walking ??= new HashSet<ISymbol>(SymbolEqualityComparer.Default);
                if (!walking.Add(module)) return null;
                try
                {
                    var ignored = new List<DiagnosticInfo>();
                    var facts = AnalyzePlacements(module, ReadLayers(module, ignored), DeclaredSizes(module), models, ignored, cancellationToken);
                    var returned = facts.Values.Where(v => v.Name == "(returned)").Select(v => v.Placement).Distinct().ToList();
                    return models.Returned[module] = returned.Count == 1 ? returned[0] : returned.Count == 0 ? null : "mixed";
                }
                finally
                {
                    walking.Remove(module);
                }
            }

            private sealed class PlacementWalk(INamedTypeSymbol type, Dictionary<string, LayerSpec> layers, int[] sizes, PlacementFacts facts,
                List<DiagnosticInfo> diagnostics, SemanticModels models, CancellationToken cancellationToken)
            {
                private Dictionary<ISymbol, Value> values = new(SymbolEqualityComparer.Default);

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
                            var returned = Eval(ret.ReturnedValue);
                            if (returned.Kind != '-') facts.Values.Add(new ValueSpec("(returned)", returned.ToString()));
                            if (returned.Kind == 'P')
                                Report(DiagnosticDescriptors.PartialEscapesId, ret.ReturnedValue!.Syntax, Text(ret.ReturnedValue), returned.Origin ?? "?");
                            return;
                        case IConditionalOperation conditional:
                            Eval(conditional.Condition);
                            var before = new Dictionary<ISymbol, Value>(values, SymbolEqualityComparer.Default);
                            Statement(conditional.WhenTrue);
                            var whenTrue = values;
                            values = new Dictionary<ISymbol, Value>(before, SymbolEqualityComparer.Default);
                            Statement(conditional.WhenFalse);
                            foreach (var pair in whenTrue)
                            {
                                var (symbol, value) = (pair.Key, pair.Value);
                                if (values.TryGetValue(symbol, out var other) && other.ToString() != value.ToString())
                                    Report(DiagnosticDescriptors.UnsupportedShardedOperationId, conditional.Syntax,
                                        $"'{symbol.Name}' is {value} after one branch and {other} after the other; its placement must not depend on the branch taken");
                                else values[symbol] = value;
                            }
                            return;
                        case ILoopOperation loop:
                            if (loop is IForEachLoopOperation each) Eval(each.Collection);
                            Statement(loop.Body);
                            return;
                        case IExpressionStatementOperation expression:
                            Eval(expression.Operation);
                            return;
                        default:
                            foreach (var child in operation.ChildOperations) Statement(child);
                            return;
                    }
                }

                private Value Eval(IOperation? operation)
                {
                    switch (operation)
                    {
                        case null:
                            return Value.None;
                        case IConversionOperation conversion:
                            return Eval(conversion.Operand);
                        case ILocalReferenceOperation local:
                            return values.TryGetValue(local.Local, out var l) ? l : Default(local.Type);
                        case IParameterReferenceOperation parameter:
                            return values.TryGetValue(parameter.Parameter, out var p) ? p : Default(parameter.Type);
                        case ISimpleAssignmentOperation assignment:
                        {
                            var value = Eval(assignment.Value);
                            if (Symbol(assignment.Target) is { } target) Record(target, value);
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
                            return Eval(unary.Operand);
                        case IArrayElementReferenceOperation { ArrayReference: IPropertyReferenceOperation { Property.Name: "shape" } shape } element
                            when shape.Instance is { } tensor && IsTensor(tensor.Type):
                            ShapeRead(element, Eval(tensor), element.Indices.Length == 1 ? element.Indices[0] : null);
                            return Default(element.Type);
                        case IPropertyReferenceOperation { Property.Name: "shape", Instance: { } whole } read when IsTensor(whole.Type):
                            ShapeRead(read, Eval(whole), index: null);
                            return Default(read.Type);
                        case IArrayElementReferenceOperation element:
                        {
                            var array = Eval(element.ArrayReference);
                            return array.IsArray ? new Value(array.Kind, array.Dim, array.Rank) : Default(element.Type);
                        }
                        case IInvocationOperation invocation:
                            return Invocation(invocation);
                        default:
                            var children = operation.ChildOperations.Select(Eval).ToList();
                            if (children.Any(c => c.Kind is 'S' or 'P') && IsTensor(operation.Type))
                                return Unsupported(operation, children.First(c => c.Kind is 'S' or 'P'), "this operation has no placement rule");
                            return Default(operation.Type);
                    }
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

                    if (method.ContainingType.ToDisplayString() == TensorType && !method.IsStatic)
                        return TensorMethod(invocation, name, instance, arguments);

                    var container = method.ContainingType.ToDisplayString();
                    if (container is "TorchSharp.torch.nn.functional" or "TorchSharp.torch" or "TorchSharp.torch.special")
                        return TorchFunction(invocation, name, arguments);

                    var placed = arguments.Concat(new[] { instance }).Where(a => a.Kind is 'S' or 'P').ToList();
                    if (placed.Count > 0 && IsTensor(method.ReturnType))
                        return Unsupported(invocation, placed[0], $"'{name}' has no placement rule");
                    return Default(method.ReturnType);
                }

                private Value LinearForward(IInvocationOperation call, LayerSpec layer, Value input)
                {
                    if (input.Kind == 'P' && layer.Placement == LayerPlacement.Row)
                    {
                        facts.Sites[call.Syntax] = "reduce-scatter";
                        Report(DiagnosticDescriptors.ReshardInsertedId, call.Syntax, Text(call), "a reduce-scatter (P -> S(-1))",
                            $"the partial sum from '{input.Origin}' entering RowParallel '{layer.Field}'", $"tokens x {layer.In} / tp elements per rank, forward; an all-gather of the gradient backward");
                        input = new Value('S', -1, input.Rank);
                    }
                    if (input.Kind == 'P' && layer.Placement != LayerPlacement.Row)
                    {
                        facts.Sites[call.Syntax] = "reduce";
                        Report(DiagnosticDescriptors.ReshardInsertedId, call.Syntax, Text(call), "an all-reduce (P -> R)",
                            $"the partial sum from '{input.Origin}' entering {Parser.PlacementName(layer.Placement)} '{layer.Field}'", $"tokens x {layer.In} elements per rank, forward");
                        input = Value.Replicated(input.Rank);
                    }
                    switch (layer.Placement)
                    {
                        case LayerPlacement.Column:
                            if (input.IsSharded && input.Dim == -1)
                            {
                                facts.Sites[call.Syntax] = "gather";
                                Report(DiagnosticDescriptors.ColumnAfterColumnId, call.Syntax, layer.Field, input.Origin ?? "an earlier layer");
                            }
                            else if (input.Kind != 'R') return Unsupported(call, input, $"ColumnParallel '{layer.Field}' needs its whole input (R)");
                            return new Value('S', -1, input.Rank, layer.Field, size: layer.Out);
                        case LayerPlacement.Vocab:
                            if (input.Kind != 'R') return Unsupported(call, input, $"VocabParallel '{layer.Field}' needs whole (R) ids");
                            return Value.Replicated(input.Rank is { } r ? r + 1 : null);
                        case LayerPlacement.Row:
                            if (input.Kind == 'R')
                            {
                                facts.Sites[call.Syntax] = "slice";
                                Report(DiagnosticDescriptors.ReshardInsertedId, call.Syntax, Text(call), "a local slice (R -> S(-1))",
                                    $"the replicated input of RowParallel '{layer.Field}'", "free: no communication forward; an all-gather of the input gradient backward");
                            }
                            else if (!(input.IsSharded && input.Dim == -1)) return Unsupported(call, input, $"RowParallel '{layer.Field}' needs its input sharded on the last dimension (S(-1))");
                            if (layer.Partial)
                            {
                                // A replicated input is sliced first here too: the partial product needs the local slice.
                                facts.Sites[call.Syntax] = input.Kind == 'R' ? "slice-partial"
                                    : facts.Sites.TryGetValue(call.Syntax, out var inserted) && inserted == "reduce-scatter" ? "reduce-scatter-partial" : "partial";
                                return new Value('P', 0, input.Rank, layer.Field);
                            }
                            return Value.Replicated(input.Rank);
                        default:
                            if (input.Kind != 'R') return Unsupported(call, input, $"replicated layer '{layer.Field}' needs its whole input (R)");
                            return Value.Replicated(input.Rank);
                    }
                }

                private Value ModuleForward(IInvocationOperation call, ITypeSymbol module, Value input)
                {
                    var typeName = module.Name;
                    if (typeName.Contains("Dropout"))
                    {
                        Report(DiagnosticDescriptors.UnsupportedShardedOperationId, call.Syntax, Text(call),
                            $"on a value placed {input}: a '{typeName}' module draws from torch's global generator, which differs between ranks, so replicas would drop different elements; call nn.functional.dropout(x, p, training) instead, which gets a stream per tp rank on sharded values and a shared one on replicated values");
                        return input;
                    }
                    if (input.Kind == 'P') return NonLinear(call, input, $"passes to the '{typeName}' module", $"a module may compute anything of its input, so it needs the whole value; feed the partial sum to a Linear layer first");
                    if (input.Kind == 'R' && module is INamedTypeSymbol named && IsTensor(call.Type))
                    {
                        // Across a module boundary: the sub-module's own walk says what its forward returns.
                        switch (ReturnedPlacement(named, models, cancellationToken))
                        {
                            case "mixed":
                                return Unsupported(call, new Value('S', -1), $"'{typeName}' returns differently placed values from different returns, so its output cannot be placed here");
                            case { } placement when placement.StartsWith("S(", System.StringComparison.Ordinal)
                                && int.TryParse(placement.Substring(2, placement.Length - 3), out var dim):
                                return new Value('S', dim);
                        }
                    }
                    if (input.Kind == 'R' || input.Kind == '-') return IsTensor(call.Type) ? Value.Replicated(input.Rank) : Value.None;
                    if (typeName.Contains("Norm"))
                    {
                        if (input.IsSharded && input.Dim == -1)
                        {
                            Report(DiagnosticDescriptors.ShardedReductionId, call.Syntax, Text(call), "normalizes", "-1", input.ToString());
                            return input.With(input.Rank);
                        }
                        return input;
                    }
                    if (typeName is "Dropout" or "GELU" or "ReLU" or "SiLU" or "Tanh" or "Sigmoid" or "Identity") return input;
                    return Unsupported(call, input, $"'{typeName}' modules take whole (R) inputs here");
                }

                private Value TensorMethod(IInvocationOperation call, string name, Value self, List<Value> arguments)
                {
                    switch (name)
                    {
                        case "view" or "reshape" when self.Kind == 'P':
                            return new Value('P', 0, ParamsCount(call), self.Origin);
                        case "view" or "reshape":
                        {
                            var shape = ParamsCount(call);
                            if (self.Kind != 'S') return Value.Replicated(shape);
                            if (shape is not { } rank)
                                return Unsupported(call, self, $"'{name}' of a sharded value needs its sizes written out, so the generator can tell which one carries the shard");
                            // With the rank known, the shard follows the major factor of its group; a value straight from the
                            // module's input has no known rank, and a view of it splits its last dimension into (heads, head size).
                            int dim = KeepsLastDimension(call, self) ? -1
                                : self.Rank is { } before ? ShiftFromEnd(self.Dim, before, rank) : self.Dim == -1 ? -2 : self.Dim;
                            facts.Sites[call.Syntax] = (name == "view" ? "View:" : "Reshape:") + dim;
                            CheckViewDivisible(call, rank + dim);
                            return new Value('S', dim, rank, size: dim == -1 ? self.Size : null);
                        }
                        case "size" when self.Kind == 'S':
                            ShapeRead(call, self, call.Arguments.FirstOrDefault(a => a.Parameter?.Ordinal == 0)?.Value);
                            return Value.None;
                        case "transpose" or "swapaxes" or "swapdims":
                        {
                            if (self.Kind != 'S') return self.With(self.Rank);
                            var a = Constant(call, 0);
                            var b = Constant(call, 1);
                            if (a is null || b is null) return Unsupported(call, self, "its dimensions must be constants to follow the shard");
                            int? rank = self.Rank;
                            int na = Normalize(a.Value, rank), nb = Normalize(b.Value, rank);
                            if (na >= 0 || nb >= 0) return Unsupported(call, self, "the value's number of dimensions is not known here; use negative dimensions");
                            int d = self.Dim == na ? nb : self.Dim == nb ? na : self.Dim;
                            return new Value('S', d, rank);
                        }
                        case "permute" when self.Kind == 'S':
                        {
                            var order = ParamsConstants(call);
                            if (order is null || self.Rank is not { } rank || order.Length != rank)
                                return Unsupported(call, self, "permute of a sharded value needs constant dimensions and a known number of dimensions");
                            int from = rank + self.Dim, to = System.Array.IndexOf(order, from) >= 0 ? System.Array.IndexOf(order, from) : System.Array.IndexOf(order, self.Dim);
                            if (to < 0) return Unsupported(call, self, "permute does not name the sharded dimension");
                            return new Value('S', to - rank, rank);
                        }
                        case "contiguous" or "clone" or "detach" or "to" or "type_as" or "alias" or "requires_grad_" or "float" or "half" or "bfloat16" or "neg":
                            return Keep(self);
                        case "gelu" or "relu" or "silu" or "tanh" or "sigmoid" or "exp" or "sqrt" or "rsqrt" or "abs":
                            if (self.Kind == 'P') return NonLinear(call, self, $"applies {name} to", $"{name} of the summands is not {name} of the sum");
                            return self.With(self.Rank);
                        case "softmax" or "log_softmax" or "max" or "min" or "amax" or "amin" or "var" or "std" or "norm" or "logsumexp" when self.Kind == 'P':
                            return NonLinear(call, self, $"takes {name} of", $"{name} of the summands is not {name} of the sum");
                        case "softmax" or "log_softmax" or "sum" or "mean" or "max" or "min" or "amax" or "amin" or "var" or "std" or "norm" or "logsumexp":
                        {
                            if (self.Kind == 'P') return Keep(self); // sum and mean are linear
                            if (self.Kind != 'S') return self.Kind == '-' ? Value.None : Value.Replicated();
                            var dim = Constant(call, 0);
                            if (dim is { } d0 && Unplaceable(d0, self)) return UnknownRank(call, self, d0);
                            int? n = dim is null ? null : Normalize(dim.Value, self.Rank);
                            if (dim is null || n == self.Dim)
                            {
                                Report(DiagnosticDescriptors.ShardedReductionId, call.Syntax, Text(call), name is "softmax" or "log_softmax" ? "takes a softmax" : "reduces",
                                    dim is null ? "(all)" : dim.Value.ToString(), self.ToString());
                                return self.With(self.Rank);
                            }
                            return self.With(self.Rank);
                        }
                        case "chunk" or "split":
                        {
                            if (self.Kind != 'S') return new Value(self.Kind, 0, self.Rank, null, array: true);
                            var dim = Constant(call, 1) ?? -1;
                            if (Unplaceable(dim, self))
                            {
                                UnknownRank(call, self, dim);
                                return new Value('S', self.Dim, self.Rank, null, array: true);
                            }
                            if (Normalize(dim, self.Rank) == self.Dim)
                            {
                                if (self.Origin is null || name != "chunk" || Constant(call, 0) is not { } parts || parts < 2)
                                    return Unsupported(call, self, "only chunk(n, dim) of a ColumnParallel layer's own output can split the sharded dimension (the layer then holds its slice of each part)");
                                facts.Chunks[self.Origin] = parts;
                            }
                            return new Value('S', self.Dim, self.Rank, null, array: true);
                        }
                        case "matmul" or "bmm":
                            return MatMul(call, self, arguments.FirstOrDefault());
                        case "add" or "sub" or "mul" or "div":
                            return Binary(call, name switch { "add" => BinaryOperatorKind.Add, "sub" => BinaryOperatorKind.Subtract, "mul" => BinaryOperatorKind.Multiply, _ => BinaryOperatorKind.Divide },
                                self, arguments.FirstOrDefault());
                        default:
                            if (self.Kind is 'S' or 'P' || arguments.Any(a => a.Kind is 'S' or 'P'))
                                return Unsupported(call, self.Kind is 'S' or 'P' ? self : arguments.First(a => a.Kind is 'S' or 'P'), $"Tensor.{name} has no placement rule");
                            return Default(call.Type);
                    }
                }

                private Value TorchFunction(IInvocationOperation call, string name, List<Value> arguments)
                {
                    var first = arguments.FirstOrDefault();
                    switch (name)
                    {
                        case "dropout" when first.Kind is 'R' or 'S':
                            facts.Sites[call.Syntax] = first.Kind == 'S' ? "Dropout:true" : "Dropout:false";
                            return first.With(first.Rank);
                        case "gelu" or "relu" or "silu" or "tanh" or "sigmoid" or "dropout" or "elu" or "leaky_relu" or "mish" or "softplus":
                            if (first.Kind == 'P') return NonLinear(call, first, $"applies {name} to", name == "dropout"
                                ? "each rank would drop different elements of its summand" : $"{name} of the summands is not {name} of the sum");
                            return first.With(first.Rank);
                        case "softmax" or "log_softmax" or "layer_norm" or "rms_norm" when first.Kind == 'P':
                            return NonLinear(call, first, $"applies {name} to", $"{name} of the summands is not {name} of the sum");
                        case "softmax" or "log_softmax":
                        {
                            if (first.Kind != 'S') return first.With(first.Rank);
                            var dim = Constant(call, 1);
                            if (dim is { } d1 && Unplaceable(d1, first)) return UnknownRank(call, first, d1);
                            if (dim is null || Normalize(dim.Value, first.Rank) == first.Dim)
                            {
                                Report(DiagnosticDescriptors.ShardedReductionId, call.Syntax, Text(call), "takes a softmax", dim?.ToString() ?? "(unknown)", first.ToString());
                                return first.With(first.Rank);
                            }
                            return first.With(first.Rank);
                        }
                        case "cross_entropy" when first.Kind == 'S':
                            if (first.Dim != -1)
                            {
                                Report(DiagnosticDescriptors.ShardedReductionId, call.Syntax, Text(call), "computes cross-entropy", first.Dim.ToString(), first.ToString());
                                return Value.Replicated();
                            }
                            facts.Sites[call.Syntax] = "VocabCrossEntropy";
                            return Value.Replicated(0);
                        case "layer_norm" or "rms_norm":
                            if (first.IsSharded && first.Dim == -1)
                            {
                                Report(DiagnosticDescriptors.ShardedReductionId, call.Syntax, Text(call), "normalizes", "-1", first.ToString());
                                return first.With(first.Rank);
                            }
                            return first.With(first.Rank);
                        case "scaled_dot_product_attention":
                        {
                            var (q, k, v) = (first, arguments.ElementAtOrDefault(1), arguments.ElementAtOrDefault(2));
                            if (q.Kind != 'S' && k.Kind != 'S' && v.Kind != 'S') return Value.Replicated(q.Rank);
                            if (q.ToString() != k.ToString() || q.ToString() != v.ToString())
                                return Unsupported(call, q.Kind == 'S' ? q : k.Kind == 'S' ? k : v, $"q, k and v must be sharded alike (here {q}, {k}, {v})");
                            if (q.Dim >= -2)
                            {
                                Report(DiagnosticDescriptors.ShardedReductionId, call.Syntax, Text(call), "attends", q.Dim.ToString(), q.ToString());
                                return q.With(q.Rank);
                            }
                            return q.With(q.Rank);
                        }
                        case "matmul" or "bmm":
                            return MatMul(call, first, arguments.ElementAtOrDefault(1));
                        case "cat" or "concat" or "concatenate":
                        {
                            var parts = call.Arguments.FirstOrDefault()?.Value is IArrayCreationOperation { Initializer: { } parts0 } ? parts0.ElementValues.Select(Eval).ToList() : null;
                            if (parts is null) return first.Kind is 'S' or 'P' ? Unsupported(call, first, "cat of a sharded array needs its parts written out") : Default(call.Type);
                            if (parts.All(v => v.Kind == 'R')) return Value.Replicated(parts[0].Rank);
                            var dim = Constant(call, 1) ?? 0;
                            var shard = parts.First(v => v.Kind != 'R');
                            if (shard.Kind != 'S' || parts.Any(v => v.ToString() != shard.ToString()))
                                return Unsupported(call, shard, "cat needs every part placed alike");
                            if (Unplaceable(dim, shard)) return UnknownRank(call, shard, dim);
                            if (Normalize(dim, shard.Rank) == shard.Dim)
                                return Unsupported(call, shard, "cat along the sharded dimension would interleave the ranks' slices");
                            return shard.With(shard.Rank);
                        }
                        default:
                            if (arguments.FirstOrDefault(a => a.Kind is 'S' or 'P') is { Kind: 'S' or 'P' } sharded)
                                return Unsupported(call, sharded, $"'{name}' has no placement rule");
                            return Default(call.Type);
                    }
                }

                /// <summary>
                /// A view whose last size is written exactly as the sharded dimension's own size (for example
                /// <c>logits.view(-1, vocab)</c> after a head built with <c>vocab</c> outputs) keeps the shard on the last
                /// dimension: the leading dimensions were merged or split, not the sharded one.
                /// </summary>
                private static bool KeepsLastDimension(IInvocationOperation call, Value self) =>
                    self.Dim == -1 && self.Size is { } size && call.Arguments.FirstOrDefault()?.Value is IArrayCreationOperation { Initializer: { } initializer }
                    && initializer.ElementValues.Length > 0 && Instance(initializer.ElementValues[initializer.ElementValues.Length - 1])?.Syntax.ToString() == size;

                /// <summary>MP0010: the size written at the view's shard position, when constant, must divide by every declared tp.</summary>
                private void CheckViewDivisible(IInvocationOperation call, int index)
                {
                    if (sizes.Length == 0 || call.Arguments.FirstOrDefault()?.Value is not IArrayCreationOperation { Initializer: { } initializer }) return;
                    if (index < 0 || index >= initializer.ElementValues.Length) return;
                    var element = initializer.ElementValues[index];
                    if (element.ConstantValue is not { HasValue: true, Value: { } value } || !long.TryParse(value.ToString(), out long size) || size < 0) return;
                    foreach (var tp in sizes.Where(tp => size % tp != 0).Take(1))
                        Report(DiagnosticDescriptors.NotDivisibleId, element.Syntax, $"dimension {index} of the view", size.ToString(), $"'{Text(call)}' (it carries the tp shard, e.g. the heads)", tp.ToString(), type.Name);
                }

                private Value MatMul(IOperation call, Value a, Value b)
                {
                    if (a.Kind != 'S' && b.Kind != 'S') return Value.Replicated(a.Rank ?? b.Rank);
                    if (a.ToString() == b.ToString() && a.Dim <= -3) return a.With(a.Rank ?? b.Rank);
                    return Unsupported(call, a.Kind == 'S' ? a : b, $"matmul of {a} and {b}: both operands must be sharded on the same batch dimension (heads), not on the two multiplied ones");
                }

                private Value Binary(IOperation operation, BinaryOperatorKind kind, Value a, Value b)
                {
                    if (!IsTensor(operation.Type)) return Value.None;
                    if ((a.Kind == 'P' && b.Kind == '-' || b.Kind == 'P' && a.Kind == '-') && kind is BinaryOperatorKind.Add or BinaryOperatorKind.Subtract)
                        return NonLinear(operation, a.Kind == 'P' ? a : b, "adds a constant to", "every rank would add it to its summand, so the sum would hold it tp times");
                    if (a.Kind == '-') return b.With(b.Rank);
                    if (b.Kind == '-') return a.With(a.Rank);
                    if (a.Kind == 'R' && b.Kind == 'R') return Value.Replicated(a.Rank ?? b.Rank);
                    if (a.Kind == 'P' || b.Kind == 'P')
                    {
                        var p = a.Kind == 'P' ? a : b;
                        var other = a.Kind == 'P' ? b : a;
                        bool additive = kind is BinaryOperatorKind.Add or BinaryOperatorKind.Subtract;
                        if (other.Kind == 'P' && additive) return new Value('P', 0, a.Rank ?? b.Rank, a.Origin ?? b.Origin);
                        if (other.Kind == 'R' && !additive && (kind == BinaryOperatorKind.Multiply || a.Kind == 'P'))
                            return new Value('P', 0, a.Rank ?? b.Rank, p.Origin); // scaling a sum by a whole value scales each summand
                        if (other.Kind == 'R' && additive)
                            return NonLinear(operation, p, "adds a whole (R) value to", "every rank would add it to its summand, so the sum would hold it tp times");
                        if (other.Kind == 'P')
                            return NonLinear(operation, p, $"{kind} of two", "the product of two sums is not the sum of the products of their summands");
                    }
                    if (a.Kind == 'S' && b.Kind == 'S' && a.Dim == b.Dim) return new Value('S', a.Dim, a.Rank ?? b.Rank);
                    return Unsupported(operation, a.Kind == 'S' ? a : b,
                        $"{kind} of a value placed {a} and one placed {b}; operators cannot be intercepted, so no resharding can be inserted here");
                }

                private void Record(ISymbol symbol, Value value)
                {
                    values[symbol] = value;
                    if (value.Kind != '-') facts.Values.Add(new ValueSpec(symbol.Name, value.IsArray ? $"{value} (each part)" : value.ToString()));
                }

                private static Value Keep(Value value) => new(value.Kind, value.Dim, value.Rank, value.Kind == 'P' ? value.Origin : null);

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
                private static bool Unplaceable(int dim, Value value) => value.Kind == 'S' && dim >= 0 && value.Rank is null;

                private Value UnknownRank(IOperation operation, Value value, int dim) =>
                    Unsupported(operation, value, $"dimension {dim} is counted from the start, but the value's number of dimensions is not known here, so it may be the sharded one; count it from the end (-1, -2, ...) or give the value a known rank with a view of its sizes written out");

                /// <summary>
                /// A size read of a sharded value (<c>shape</c>, <c>shape[k]</c>, <c>size(k)</c>) is the local shard's on each
                /// rank. Allowed only where the dimension read is provably not the sharded one.
                /// </summary>
                private void ShapeRead(IOperation at, Value value, IOperation? index)
                {
                    if (value.Kind != 'S') return;
                    int? fromEnd = index switch
                    {
                        IUnaryOperation { OperatorKind: UnaryOperatorKind.Hat, Operand.ConstantValue: { HasValue: true, Value: int k } } => -k,
                        { ConstantValue: { HasValue: true, Value: int c } } when c < 0 => c,
                        { ConstantValue: { HasValue: true, Value: int c } } when value.Rank is { } rank => c - rank,
                        IConversionOperation { Operand.ConstantValue: { HasValue: true, Value: int c } } when value.Rank is { } rank2 => c < 0 ? c : c - rank2,
                        _ => null,
                    };
                    if (fromEnd is { } d && d != value.Dim) return;
                    var what = index is null ? "reads the whole shape" : fromEnd is null ? "reads a size whose dimension the walk cannot place (not a constant, or counted from the start on a value of unknown rank)" : "reads the size of the sharded dimension";
                    Unsupported(at, value, $"{what}: on each rank it is the local shard's (that dimension divided by tp), not one device's; read the size from the layer's input, or of a dimension counted from the end that is not sharded");
                }

                /// <summary>Reports the operation and carries the offending placement on, so one mistake gives one diagnostic.</summary>
                private Value Unsupported(IOperation operation, Value value, string why)
                {
                    Report(DiagnosticDescriptors.UnsupportedShardedOperationId, operation.Syntax, Text(operation), $"on a value placed {value}: {why}");
                    return new Value(value.Kind, value.Dim, value.Rank);
                }

                private void Report(string id, SyntaxNode at, params string[] arguments) => diagnostics.Add(Diagnostic(id, at.GetLocation(), arguments));

                private static string Text(IOperation operation) => Trim(operation.Syntax.ToString());

                private static string Trim(string text) => text.Length > 60 ? text.Substring(0, 57) + "..." : text;

                private static ISymbol? Symbol(IOperation target) => target switch
                {
                    ILocalReferenceOperation local => local.Local,
                    IParameterReferenceOperation parameter => parameter.Parameter,
                    _ => null,
                };

                private static bool IsTensor(ITypeSymbol? type) =>
                    type?.ToDisplayString() is TensorType or TensorType + "?" or TensorType + "[]";

                private static Value Default(ITypeSymbol? type) =>
                    type?.ToDisplayString() is TensorType + "[]" ? new Value('R', array: true) : IsTensor(type) ? Value.Replicated() : Value.None;

                /// <summary>The number of sizes a params-array call such as view(b, t, h, d) passes, when written out.</summary>
                private static int? ParamsCount(IInvocationOperation call)
                {
                    var argument = call.Arguments.FirstOrDefault();
                    if (argument is { ArgumentKind: ArgumentKind.ParamArray, Value: IArrayCreationOperation { Initializer: { } initializer } })
                        return initializer.ElementValues.Length;
                    return null;
                }

                /// <summary>The constant values of a params-array call such as permute(0, 2, 1, 3), when all are constants.</summary>
                private static int[]? ParamsConstants(IInvocationOperation call)
                {
                    if (call.Arguments.FirstOrDefault()?.Value is not IArrayCreationOperation { Initializer: { } initializer }) return null;
                    var values = new List<int>();
                    foreach (var element in initializer.ElementValues)
                    {
                        if (element.ConstantValue is not { HasValue: true, Value: { } v } || !long.TryParse(v.ToString(), out long n)) return null;
                        values.Add((int)n);
                    }
                    return values.ToArray();
                }

                /// <summary>The constant integer value of the call's argument at <paramref name="index"/>, if it is one.</summary>
                private static int? Constant(IInvocationOperation call, int index)
                {
                    var constant = call.Arguments.FirstOrDefault(a => a.Parameter?.Ordinal == index)?.Value.ConstantValue;
                    return constant is { HasValue: true, Value: not null } && long.TryParse(constant.Value.Value!.ToString(), out var v) ? (int)v : null;
                }

                private static int Normalize(int dim, int? rank) => dim < 0 || rank is null ? dim : dim - rank.Value;

                /// <summary>A shard at <paramref name="dim"/> (from the end) of a rank-<paramref name="before"/> value, after a view to rank <paramref name="after"/>: the major factor of its group.</summary>
                private static int ShiftFromEnd(int dim, int before, int after) =>
                    after > before ? dim - (after - before) : after < before ? dim + (before - after) : dim;
            }
        }
    }
}
