using System.Collections.Generic;
using System.Linq;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.Operations;
using ModelParallel.Generators.Model;

namespace ModelParallel.Generators
{
    public sealed partial class ParallelModuleGenerator
    {
        internal static partial class Parser
        {
            /// <summary>Rules for lambdas and local functions in forward: walked where they are written, their results whole.</summary>
            private sealed partial class PlacementWalk
            {
                /// <summary>
                /// A lambda or local function is walked where it is written, its parameters whole (a delegate invoked with a
                /// sharded or partial value has no placement rule, so it is refused there). What it returns is not followed
                /// to where it is called, so it must return whole values; and it may not read a sharded or partial local of
                /// forward (which may be placed otherwise by the time it runs) nor change one.
                /// </summary>
                private void Closure(IOperation function)
                {
                    foreach (var local in function.Descendants().OfType<ILocalReferenceOperation>())
                    {
                        if (!values.TryGetValue(local.Local, out var captured) || !captured.IsPlaced) continue;
                        Report(DiagnosticDescriptors.UnsupportedShardedOperationId, local.Syntax, Text(local),
                            $"a value placed {captured} read inside a lambda or local function, which may run when it is placed otherwise; pass it as an argument, or write the code in forward or in a method of the class (those are walked with their arguments' placements)");
                        return;
                    }
                    var body = function switch
                    {
                        IAnonymousFunctionOperation lambda => lambda.Body,
                        ILocalFunctionOperation local => (IOperation?)local.Body ?? local.IgnoredBody,
                        _ => null,
                    };
                    var (outerValues, outerReturns) = (values, helperReturns);
                    values = new Dictionary<ISymbol, Value>(outerValues, SymbolEqualityComparer.Default);
                    helperReturns = new List<Value>();
                    try
                    {
                        Statement(body);
                        if (helperReturns.FirstOrDefault(r => r.IsPlaced) is { IsPlaced: true } returned)
                            Report(DiagnosticDescriptors.UnsupportedShardedOperationId, function.Syntax, Text(function),
                                $"a lambda or local function that returns a value placed {returned}: where it is called, the walk cannot follow what it returns; return a whole value (end it with a RowParallel layer), or write it as a method of the class (those are walked)");
                        // A local of forward it assigns keeps, after it, the placement the walk saw before it: whether and
                        // when it runs is not known here, so it may not change one.
                        else if (outerValues.FirstOrDefault(pair => values.TryGetValue(pair.Key, out var after) && !after.SamePlacement(pair.Value)) is { Key: { } changed } pair)
                            Report(DiagnosticDescriptors.UnsupportedShardedOperationId, function.Syntax, Text(function),
                                $"a lambda or local function that changes '{changed.Name}' from {pair.Value} to {values[changed]}: the walk cannot tell whether or when it runs, so the code after it would see either; assign it in forward");
                    }
                    finally
                    {
                        (values, helperReturns) = (outerValues, outerReturns);
                    }
                }
            }
        }
    }
}
