using System.Linq;
using System.Runtime.CompilerServices;
using ModelParallel.Communication;
using TorchSharp;

namespace ModelParallel
{
    /// <summary>
    /// Parameters that are tp shards (registered when the generated code builds them), and the check, at an optimizer's
    /// first step in a run, that every other parameter holds the same values on every tp rank. A replicated parameter
    /// drawn from torch's global generator (a <c>Parameter(torch.randn(...))</c>, a torch.nn layer the generator does
    /// not build) differs between rank threads, which share that generator: the replicas would train apart, silently.
    /// PipelineExecutor and DataParallelGradients align replicas themselves; a plain training loop gets this check.
    /// </summary>
    internal static class ReplicaCheck
    {
        private static readonly ConditionalWeakTable<torch.Tensor, object> shards = new();
        private static readonly ConditionalWeakTable<torch.optim.Optimizer, RankContext> checkedOptimizers = new();

        /// <summary>Records that <paramref name="tensor"/> holds this tp rank's shard (its values differ by rank by design).</summary>
        public static void MarkShard(torch.Tensor? tensor)
        {
            if (tensor is not null) shards.AddOrUpdate(tensor, true);
        }

        /// <summary>On <paramref name="optimizer"/>'s first step under <paramref name="context"/>: its replicated parameters must agree over tp.</summary>
        public static void OnFirstStep(torch.optim.Optimizer optimizer, RankContext context, string site)
        {
            if (context.Mesh.Tp == 1 || checkedOptimizers.TryGetValue(optimizer, out var seen) && ReferenceEquals(seen, context)) return;
            checkedOptimizers.AddOrUpdate(optimizer, context);
            var parameters = optimizer.parameters().Where(p => p.device.type != DeviceType.META).ToList();
            // A tied weight reaches the optimizer through another wrapper of the same storage: a shard too.
            var shardStorage = parameters.Where(p => shards.TryGetValue(p, out _)).Select(p => new TensorFacts(p).Data).ToHashSet();
            var replicated = parameters.Where(p => !shards.TryGetValue(p, out _) && !shardStorage.Contains(new TensorFacts(p).Data)).ToList();
            using var scope = torch.NewDisposeScope();
            using var noGrad = torch.no_grad();
            // Three checksums per parameter, in float64: equal values give equal sums bit for bit; different ones almost never do.
            var sums = replicated.Count == 0 ? torch.zeros(0, 3, torch.float64)
                : torch.stack(replicated.Select(p =>
                {
                    var d = p.detach().flatten().to(torch.float64);
                    var weights = torch.linspace(1.0, 2.0, d.numel(), torch.float64);
                    return torch.stack(new[] { d.sum(), d.abs().sum(), (d * weights).sum() });
                }).ToArray());
            var highest = sums.clone();
            var lowest = sums.neg();
            using (CollectiveSite.Enter($"replicated parameters before the first optimizer.step() at {site}"))
            {
                context.TensorParallel.AllReduce(highest, ReduceOp.Max);
                context.TensorParallel.AllReduce(lowest, ReduceOp.Max);
            }
            var differs = highest.ne(lowest.neg()).any(1);
            for (int i = 0; i < replicated.Count; i++)
            {
                if (!differs[i].item<bool>()) continue;
                throw new PartitionException(
                    $"optimizer.step() at {site}: parameter #{i} of the optimizer [{string.Join(", ", replicated[i].shape)}] is not partitioned over tp, but its values differ between tp ranks ({context.Mesh}), so the replicas would train apart. It was probably drawn from torch's global generator, which rank threads share: build it through a layer the generator partitions or seeds (nn.Linear, nn.Embedding in a [ParallelModule]), give every rank the same values with LogicalState.Load, or let PipelineExecutor or DataParallelGradients.Attach align the replicas.");
            }
        }
    }
}
