using System.Collections.Generic;
using System.Linq;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.Operations;

namespace ModelParallel.Generators
{
    public sealed partial class ParallelModuleGenerator
    {
        internal static partial class Parser
        {
            /// <summary>
            /// Which whole values provably need no gradient. A whole value broadcast into a shard is used by each rank on its
            /// slice only, so its gradient from that use is each rank's partial sum; only a value no gradient reaches (a
            /// rotary table from arange, a mask from a comparison, anything detached) may be broadcast so.
            /// </summary>
            private sealed partial class PlacementWalk
            {
                /// <summary>What Eval gave each operation of this walk, for the operations built from them.</summary>
                private readonly Dictionary<IOperation, Value> evaluated = new();

                /// <summary>torch functions that build a tensor no gradient reaches, whatever their arguments.</summary>
                private static readonly HashSet<string> Factories = new()
                {
                    "arange", "linspace", "logspace", "zeros", "ones", "empty", "full", "eye", "rand", "randn", "randint", "tensor",
                    "zeros_like", "ones_like", "empty_like", "full_like", "rand_like", "randn_like",
                };

                /// <summary>Operations whose result is boolean or integral, or cut from autograd.</summary>
                private static readonly HashSet<string> Gradientless = new()
                {
                    "detach", "eq", "ne", "gt", "lt", "ge", "le", "isnan", "isinf", "isfinite", "logical_and", "logical_or", "logical_not", "logical_xor",
                    "argmax", "argmin", "argsort", "sign",
                };

                /// <summary>The value of <paramref name="operation"/> provably needs no gradient.</summary>
                private bool NeedsNoGradient(IOperation operation)
                {
                    switch (operation)
                    {
                        case IInvocationOperation call:
                        {
                            var method = call.TargetMethod;
                            bool torchFunction = Known.IsTorchFunctions(method.ContainingType);
                            bool tensorMethod = SymbolEqualityComparer.Default.Equals(method.ContainingType, Known.Tensor) && !method.IsStatic;
                            if (!torchFunction && !tensorMethod) return false; // a module, a helper, anything else: it may hold parameters
                            if (Gradientless.Contains(method.Name) || (torchFunction && Factories.Contains(method.Name))) return true;
                            return (call.Instance is null || NoGradient(call.Instance)) && call.Arguments.All(a => NoGradient(a.Value));
                        }
                        case IBinaryOperation binary:
                            return binary.OperatorKind is BinaryOperatorKind.Equals or BinaryOperatorKind.NotEquals or BinaryOperatorKind.LessThan
                                or BinaryOperatorKind.LessThanOrEqual or BinaryOperatorKind.GreaterThan or BinaryOperatorKind.GreaterThanOrEqual
                                || (NoGradient(binary.LeftOperand) && NoGradient(binary.RightOperand));
                        case IUnaryOperation unary:
                            return NoGradient(unary.Operand);
                        case IArrayElementReferenceOperation element:
                            return NoGradient(element.ArrayReference);
                        default:
                            return false;
                    }
                }

                /// <summary>
                /// An operand no gradient reaches: not a tensor (a number, a size), a tensor value known to need none, or an
                /// array or collection built of such values.
                /// </summary>
                private bool NoGradient(IOperation operation)
                {
                    while (operation is IConversionOperation or IParenthesizedOperation)
                        operation = operation is IConversionOperation c ? c.Operand : ((IParenthesizedOperation)operation).Operand;
                    if (operation is IArrayCreationOperation or IArrayInitializerOperation or ICollectionExpressionOperation)
                        return operation.ChildOperations.All(NoGradient);
                    if (evaluated.TryGetValue(operation, out var value) && value.IsTensor) return value.IsReplicated && value.NoGrad;
                    if (IsTensor(operation.Type)) return false;
                    if (operation.Type is IArrayTypeSymbol || HoldsTensors(operation.Type))
                        return evaluated.TryGetValue(operation, out var array) && array.IsArray && array.NoGrad;
                    return true;
                }
            }
        }
    }
}
