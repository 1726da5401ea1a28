using System.Linq;
using ModelParallel.Communication;
using TorchSharp;

namespace ModelParallel
{
    /// <summary>
    /// Makes replicated parameters the same on every rank that replicates them, as DDP does when it wraps a model:
    /// a parameter replicated over tp is broadcast from tp rank 0, and every parameter from dp rank 0. Layers the
    /// generator builds are initialised identically already; this covers the rest (a replicated embedding, a
    /// parameter of the user's own), whose TorchSharp initialisation draws from the process-global generator and
    /// so differs between rank threads, which would make "replicated" values silently differ. Run once, before
    /// training, by <see cref="Pipelining.PipelineExecutor"/> and <see cref="DataParallel.DataParallelGradients.Attach"/>.
    /// </summary>
    internal static class ReplicaAlignment
    {
        public static void Align(torch.nn.Module model, RankContext context, bool overDataParallel)
        {
            if (context.Validating) return;
            var placements = LogicalState.Placements(model);
            using var noGrad = torch.no_grad();
            foreach (var (name, parameter) in model.named_parameters().OrderBy(p => p.name, System.StringComparer.Ordinal))
            {
                if (parameter.device.type == DeviceType.META) continue;
                bool replicatedOverTp = !(placements.TryGetValue(name, out var p) && p.Placement.Kind == PlacementKind.Shard);
                using var site = CollectiveSite.Enter($"replica alignment of '{name}'");
                if (replicatedOverTp && context.Mesh.Tp > 1) Broadcast(context.TensorParallel, parameter);
                if (overDataParallel && context.Mesh.Dp > 1) Broadcast(context.DataParallel, parameter);
            }
        }

        private static void Broadcast(ICommunicator communicator, torch.Tensor parameter)
        {
            using var copy = parameter.detach().contiguous().clone();
            communicator.Broadcast(copy, 0);
            parameter.copy_(copy);
        }
    }
}
