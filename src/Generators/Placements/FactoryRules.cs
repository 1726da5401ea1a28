using System.Linq;
using Microsoft.CodeAnalysis.Operations;

namespace ModelParallel.Generators
{
    public sealed partial class ParallelModuleGenerator
    {
        internal static partial class Parser
        {
            /// <summary>Rules for tensors built from sizes alone (arange, outer, zeros, ones…): whole on every rank, of a rank the call shows.</summary>
            private sealed partial class PlacementWalk
            {
                /// <summary>Tensors a torch function builds from sizes alone: whole on every rank, of a rank the call shows.</summary>
                private Value? Factory(IInvocationOperation call, string name) => name switch
                {
                    "arange" or "linspace" or "logspace" => Value.Replicated(1),
                    // Of two tensors: whole only when both are (a shard in it has no rule here, and NoRule refuses it).
                    "outer" or "ger" => call.Arguments.Any(a => evaluated.TryGetValue(a.Value, out var v) && v.IsPlaced) ? null : Value.Replicated(2),
                    "zeros" or "ones" or "empty" or "rand" or "randn" => Value.Replicated(ParamsCount(call) ?? SizeArguments(call)),
                    _ => null,
                };

                /// <summary>The number of sizes written as separate int or long arguments (zeros(b, t, d)); null when there are none.</summary>
                private static int? SizeArguments(IInvocationOperation call)
                {
                    int count = call.Arguments.TakeWhile(a => a.ArgumentKind == ArgumentKind.Explicit
                        && a.Parameter?.Type.SpecialType is Microsoft.CodeAnalysis.SpecialType.System_Int32 or Microsoft.CodeAnalysis.SpecialType.System_Int64).Count();
                    return count > 0 ? count : null;
                }
            }
        }
    }
}
