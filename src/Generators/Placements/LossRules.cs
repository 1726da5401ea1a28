using System.Collections.Generic;
using System.Linq;
using Microsoft.CodeAnalysis.Operations;

namespace ModelParallel.Generators
{
    public sealed partial class ParallelModuleGenerator
    {
        internal static partial class Parser
        {
            /// <summary>
            /// Rules for losses: cross_entropy of logits sharded on the vocabulary (S(-1)) becomes the vocabulary-parallel
            /// cross-entropy (max, sum of exp and target logit all-reduced; the logits never gathered); sharded elsewhere it
            /// is MP0011, and a partial sum is MP0012.
            /// </summary>
            private sealed partial class PlacementWalk
            {
                private Value? LossFunction(IInvocationOperation call, string name, List<Value> arguments)
                {
                    var first = arguments.FirstOrDefault();
                    switch (name)
                    {
                        case "cross_entropy" or "nll_loss" or "mse_loss" or "l1_loss" or "binary_cross_entropy" or "binary_cross_entropy_with_logits" when first.IsPartial:
                            return NonLinear(call, first, $"takes {name} of", "a loss is not linear in its input");
                        case "cross_entropy" when first.IsReplicated:
                            SetSite(call, new PlainSite());
                            return Value.Replicated();
                        case "cross_entropy" when first.IsSharded:
                            if (first.Dim != -1)
                            {
                                Report(DiagnosticDescriptors.ShardedReductionId, call.Syntax, Text(call), "computes cross-entropy", first.Dim.ToString(), first.ToString());
                                return Value.Replicated();
                            }
                            SetSite(call, new VocabLossSite());
                            return Value.Replicated();
                        default:
                            return null;
                    }
                }
            }
        }
    }
}
