using System;
using System.Collections.Generic;
using System.Linq;
using TorchSharp;

namespace ModelParallel
{
    /// <summary>
    /// Converts between a partitioned model's local shards and its logical (single-device) state.
    /// Placements come from the generated <see cref="IPartitionedModule"/> of each submodule; parameters
    /// no module lists are replicated. Inside a parallel run, export and gradient export are collectives
    /// over the tensor-parallel axis: every rank of a tp group must call them.
    /// </summary>
    public static class LogicalState
    {
        /// <summary>Placements of every partitioned parameter of <paramref name="model"/>, by full state_dict name.</summary>
        public static IReadOnlyDictionary<string, ParameterPlacement> Placements(torch.nn.Module model)
        {
            var result = new Dictionary<string, ParameterPlacement>();
            foreach (var (prefix, module) in ModulesWithSelf(model))
            {
                if (module is not IPartitionedModule partitioned) continue;
                foreach (var p in partitioned.ParameterPlacements)
                {
                    var name = prefix.Length == 0 ? p.Name : prefix + "." + p.Name;
                    result[name] = new ParameterPlacement(name, p.Placement, p.Axis);
                }
            }
            return result;
        }

        /// <summary>
        /// Loads a logical state_dict into the local shards: each rank copies its slice of every sharded
        /// tensor and the whole of every replicated one. Missing or unexpected keys, wrong logical shapes, another
        /// dtype than the model's and a tensor with no data (the meta device) are errors naming the parameter;
        /// nothing is copied unless every entry fits.
        /// </summary>
        public static void Load(torch.nn.Module model, IReadOnlyDictionary<string, torch.Tensor> logical)
        {
            RankContext.Current?.ThrowIfDeferredFailure();
            var local = model.state_dict();
            var placements = Placements(model);
            var missing = local.Keys.Where(k => !logical.ContainsKey(k)).ToList();
            var unexpected = logical.Keys.Where(k => !local.ContainsKey(k)).ToList();
            if (missing.Count > 0 || unexpected.Count > 0)
                throw new ArgumentException(
                    $"Logical state does not match the model: missing [{string.Join(", ", missing)}], unexpected [{string.Join(", ", unexpected)}].", nameof(logical));

            var slices = new List<(torch.Tensor Target, torch.Tensor Source)>();
            foreach (var (name, target) in local)
            {
                if (target.device.type == DeviceType.META) continue; // a layer another pipeline stage holds
                var source = logical[name];
                if (source.dtype != target.dtype)
                    throw new ArgumentException(
                        $"Parameter '{name}': the logical tensor is {source.dtype}, the model's is {target.dtype}; convert it first (tensor.to({target.dtype})) if that is intended.", nameof(logical));
                if (source.device.type == DeviceType.META)
                    throw new ArgumentException($"Parameter '{name}': the logical tensor is on the meta device (it has no values).", nameof(logical));
                var shard = ShardFor(name, source, placements);
                if (!shard.shape.SequenceEqual(target.shape))
                    throw new ArgumentException(
                        $"Parameter '{name}': logical shape [{string.Join(", ", source.shape)}] gives local shape [{string.Join(", ", shard.shape)}] under {PlacementText(name, placements)}, but the model's shard is [{string.Join(", ", target.shape)}].", nameof(logical));
                slices.Add((target, shard));
            }
            using var noGrad = torch.no_grad();
            foreach (var (target, source) in slices) target.copy_(source);
        }

        /// <summary>
        /// The logical state_dict: sharded tensors all-gathered over tp, replicated ones copied. Under pipeline
        /// parallelism each pp rank exports the layers it holds; the union over the pp ranks is the model. Refused
        /// (the failure is thrown) once a backward collective of this rank has failed.
        /// </summary>
        public static Dictionary<string, torch.Tensor> Export(torch.nn.Module model) =>
            Gather(model, model.state_dict().Select(kv => (kv.Key, (torch.Tensor?)kv.Value)));

        /// <summary>The logical gradient of every parameter that has one, gathered like <see cref="Export"/>.</summary>
        public static Dictionary<string, torch.Tensor> ExportGradients(torch.nn.Module model) =>
            Gather(model, model.named_parameters().Select(p => (p.name, p.parameter.grad)));

        private static Dictionary<string, torch.Tensor> Gather(torch.nn.Module model, IEnumerable<(string Name, torch.Tensor? Local)> tensors)
        {
            var placements = Placements(model);
            var context = RankContext.Current;
            // After a failed backward the gradients are zeros and the step is lost: exporting it would pass it off as good.
            context?.ThrowIfDeferredFailure();
            var result = new Dictionary<string, torch.Tensor>();
            using var noGrad = torch.no_grad();
            foreach (var (name, local) in tensors)
            {
                if (local is null || local.device.type == DeviceType.META) continue; // held by another pipeline stage
                var tensor = local.detach();
                if (context is not null && context.Mesh.Tp > 1 && placements.TryGetValue(name, out var p) && p.Placement.Kind == PlacementKind.Shard)
                {
                    using var site = Communication.CollectiveSite.Enter($"LogicalState of '{name}'");
                    result[name] = Unstride(context.TensorParallel.AllGather(tensor.contiguous(), p.Placement.Dim), p.Placement, context.Mesh.Tp);
                }
                else
                    result[name] = tensor.clone();
            }
            return result;
        }

        private static torch.Tensor ShardFor(string name, torch.Tensor logical, IReadOnlyDictionary<string, ParameterPlacement> placements)
        {
            var context = RankContext.Current;
            if (context is null || context.Mesh.Tp == 1 || !placements.TryGetValue(name, out var p) || p.Placement.Kind != PlacementKind.Shard)
                return logical;
            int dim = p.Placement.Dim, tp = context.Mesh.Tp;
            if (dim >= logical.dim() || logical.shape[dim] % tp != 0)
                throw new ArgumentException(
                    $"Parameter '{name}': logical shape [{string.Join(", ", logical.shape)}] cannot be split on dimension {dim} over tp = {tp} ({context.Mesh}).");
            int chunks = p.Placement.Chunks;
            if (logical.shape[dim] % (tp * chunks) != 0)
                throw new ArgumentException(
                    $"Parameter '{name}': logical shape [{string.Join(", ", logical.shape)}] cannot be split into {chunks} blocks of tp = {tp} slices on dimension {dim} ({context.Mesh}).");
            // Rank r holds its slice of every block, back to back (one block: a plain shard).
            long part = logical.shape[dim] / (tp * chunks);
            var slices = logical.chunk(chunks, dim).Select(block => block.narrow(dim, context.Coordinates.Tp * part, part)).ToArray();
            return chunks == 1 ? slices[0] : torch.cat(slices, dim);
        }

        /// <summary>The all-gathered ranks' shards [r0 blocks | r1 blocks | ...] put back in logical order [block 0 of every rank | block 1 ...].</summary>
        private static torch.Tensor Unstride(torch.Tensor gathered, Placement placement, int tp)
        {
            int chunks = placement.Chunks, dim = placement.Dim;
            if (chunks == 1) return gathered;
            var pieces = gathered.chunk(tp * chunks, dim); // rank r, block c at r * chunks + c
            return torch.cat(Enumerable.Range(0, chunks).SelectMany(c => Enumerable.Range(0, tp).Select(r => pieces[r * chunks + c])).ToArray(), dim);
        }

        private static string PlacementText(string name, IReadOnlyDictionary<string, ParameterPlacement> placements) =>
            placements.TryGetValue(name, out var p) ? $"{p.Placement} over {p.Axis}" : "R";

        private static IEnumerable<(string Prefix, torch.nn.Module Module)> ModulesWithSelf(torch.nn.Module model)
        {
            yield return ("", model);
            foreach (var (name, module) in model.named_modules())
            {
                if (name.Length > 0) yield return (name, module);
            }
        }
    }
}
