using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using TorchSharp;

namespace ModelParallel.Checkpointing
{
    /// <summary>What one rank writes, and how it rebuilds its own shards from shards saved on any other mesh.</summary>
    internal static class ShardSet
    {
        /// <summary>A tensor this rank writes: its name, its data, and its placement over tp.</summary>
        internal sealed record LocalShard(string Name, torch.Tensor Tensor, long[] LogicalShape, string Placement, int Dim, int Chunks, int TpRank, int TpSize);

        private const string Sharded = "S", Replicated = "R";

        /// <summary>
        /// This rank's tensors to save: every tp shard on the ranks of dp coordinate 0; replicated tensors on tp rank 0 of
        /// those; optimizer state with its parameter's placement, the step count as a replicated [1] int64.
        /// </summary>
        public static List<LocalShard> Local(torch.nn.Module model, torch.optim.Optimizer? optimizer, RankContext? context)
        {
            if (optimizer is not null) OptimizerStates.Name(optimizer); // every rank refuses an unsupported optimizer alike
            var result = new List<LocalShard>();
            if ((context?.Coordinates.Dp ?? 0) != 0) return result; // dp replicas hold the same values as dp rank 0
            int tp = context?.Mesh.Tp ?? 1, tpRank = context?.Coordinates.Tp ?? 0;
            var placements = LogicalState.Placements(model);
            var states = optimizer is null ? null : OptimizerStates.Of(optimizer);
            var handles = model.named_parameters().ToDictionary(p => p.name, p => p.parameter.Handle);
            foreach (var (name, tensor) in model.state_dict())
            {
                if (tensor.device.type == DeviceType.META) continue; // another pipeline stage holds it
                var (kind, dim, chunks) = PlacementOf(name, placements);
                if (kind == Replicated && tpRank != 0) continue;
                void Add(string key, torch.Tensor t) => result.Add(new LocalShard(key, t, Logical(t.shape, kind, dim, tp), kind, dim, chunks, kind == Sharded ? tpRank : 0, kind == Sharded ? tp : 1));
                Add(name, tensor);
                if (states is null || !handles.TryGetValue(name, out var handle) || !states.TryGetValue(handle, out var state)) continue;
                foreach (var (suffix, t) in state.Tensors) Add($"{name}::{suffix}", t);
                if (tpRank == 0) result.Add(new LocalShard($"{name}::step", torch.tensor(new[] { state.GetStep() }), new long[] { 1 }, Replicated, 0, 1, 0, 1));
            }
            return result;
        }

        /// <summary>
        /// Reads and verifies everything this rank needs into new tensors (nothing in the model changes here): for each of
        /// its tensors, the saved shards overlapping its own slice of every block.
        /// </summary>
        public static (List<(torch.Tensor Target, torch.Tensor Staged)> Copies, List<(Action<long> Set, long Step)> Steps) Stage(
            string directory, CheckpointManifest manifest, torch.nn.Module model, torch.optim.Optimizer? optimizer, RankContext? context)
        {
            var manifestFile = Path.Combine(directory, Checkpoint.Manifest);
            var records = manifest.Tensors.ToDictionary(r => r.Name, StringComparer.Ordinal);
            var local = model.state_dict();
            var saved = records.Keys.Where(k => !k.Contains("::", StringComparison.Ordinal)).ToHashSet();
            var missing = local.Keys.Where(k => !saved.Contains(k)).ToList();
            var unexpected = saved.Where(k => !local.ContainsKey(k)).ToList();
            if (missing.Count > 0 || unexpected.Count > 0)
                throw new CheckpointException($"{manifestFile} is not a checkpoint of this model: missing [{string.Join(", ", missing.Take(5))}{(missing.Count > 5 ? ", ..." : "")}], unexpected [{string.Join(", ", unexpected.Take(5))}{(unexpected.Count > 5 ? ", ..." : "")}].");
            if (optimizer is not null)
            {
                var name = OptimizerStates.Name(optimizer);
                if (manifest.Optimizer is null) throw new CheckpointException($"{manifestFile} was saved without optimizer state; load it with optimizer: null, or resume from one saved with a {name}.");
                if (manifest.Optimizer != name) throw new CheckpointException($"{manifestFile} holds {manifest.Optimizer} state; the optimizer here is {name}.");
            }
            int tp = context?.Mesh.Tp ?? 1, tpRank = context?.Coordinates.Tp ?? 0;
            var placements = LogicalState.Placements(model);
            var states = optimizer is null ? null : OptimizerStates.Of(optimizer);
            var handles = model.named_parameters().ToDictionary(p => p.name, p => p.parameter.Handle);
            var reader = new ShardReader(directory);
            var copies = new List<(torch.Tensor, torch.Tensor)>();
            var steps = new List<(Action<long>, long)>();
            foreach (var (name, tensor) in local)
            {
                if (tensor.device.type == DeviceType.META) continue;
                var (kind, dim, chunks) = PlacementOf(name, placements);
                torch.Tensor Staged(string key, torch.Tensor target)
                {
                    if (!records.TryGetValue(key, out var record)) throw new CheckpointException($"{manifestFile} has no '{key}'.");
                    return Assemble(reader, record, target, kind, dim, chunks, tp, tpRank, manifestFile);
                }
                copies.Add((tensor, Staged(name, tensor)));
                if (states is null || !handles.TryGetValue(name, out var handle) || !states.TryGetValue(handle, out var state)) continue;
                foreach (var (suffix, t) in state.Tensors) copies.Add((t, Staged($"{name}::{suffix}", t)));
                if (!records.TryGetValue($"{name}::step", out var stepRecord)) throw new CheckpointException($"{manifestFile} has no '{name}::step'.");
                steps.Add((state.SetStep, reader.Read(stepRecord, stepRecord.Shards[0]).item<long>()));
            }
            return (copies, steps);
        }

        /// <summary>The whole logical tensors of a checkpoint (consolidation), for the records <paramref name="include"/> selects.</summary>
        public static Dictionary<string, torch.Tensor> Logical(string directory, CheckpointManifest manifest, Func<string, bool> include)
        {
            var reader = new ShardReader(directory);
            var result = new Dictionary<string, torch.Tensor>();
            foreach (var record in manifest.Tensors.Where(r => include(r.Name)))
            {
                var target = torch.empty(record.Shape, Safetensors.ScalarType(record.Dtype));
                result[record.Name] = Assemble(reader, record, target, record.Placement, record.Dim, record.Chunks, 1, 0, Path.Combine(directory, Checkpoint.Manifest));
            }
            return result;
        }

        /// <summary>
        /// This rank's tensor (tp rank <paramref name="tpRank"/> of <paramref name="tp"/>) from the saved shards: along
        /// <paramref name="dim"/>, each of <paramref name="chunks"/> blocks is split over the ranks, so the local tensor is
        /// the rank's slice of every block, back to back; saved shards are the same for the saving mesh's tp.
        /// </summary>
        private static torch.Tensor Assemble(ShardReader reader, TensorRecord record, torch.Tensor target, string kind, int dim, int chunks, int tp, int tpRank, string manifestFile)
        {
            var expected = Logical(target.shape, kind, dim, tp);
            if (!expected.SequenceEqual(record.Shape))
                throw new CheckpointException($"'{record.Name}' in {manifestFile} has logical shape [{string.Join(", ", record.Shape)}]; this model's is [{string.Join(", ", expected)}].");
            var dtype = Safetensors.DtypeName(target.dtype);
            if (record.Dtype != dtype) throw new CheckpointException($"'{record.Name}' in {manifestFile} is {record.Dtype}; this model's is {dtype}.");
            if (record.Placement != kind || (kind == Sharded && (record.Dim != dim || record.Chunks != chunks)))
                throw new CheckpointException($"'{record.Name}' in {manifestFile} was saved as {Describe(record.Placement, record.Dim, record.Chunks)}; this model places it {Describe(kind, dim, chunks)}.");
            if (record.Shards.Count == 0) throw new CheckpointException($"'{record.Name}' in {manifestFile} lists no shards.");
            var staged = torch.empty(target.shape, target.dtype);
            if (kind == Replicated)
            {
                staged.copy_(reader.Read(record, record.Shards[0]));
                return staged;
            }
            long block = record.Shape[dim] / chunks, mine = block / tp;
            for (int c = 0; c < chunks; c++)
            {
                long low = c * block + tpRank * mine, high = low + mine, covered = 0;
                foreach (var shard in record.Shards)
                {
                    long part = block / shard.TpSize, savedLow = c * block + shard.TpRank * part;
                    long from = Math.Max(low, savedLow), to = Math.Min(high, savedLow + part);
                    if (from >= to) continue;
                    var source = reader.Read(record, shard);
                    // The views are held until the copy returns: a temporary the GC finalizes during the native call
                    // frees the tensor the call is writing (a segfault in bump_version under allocation pressure).
                    using var into = staged.narrow(dim, c * mine + (from - low), to - from);
                    using var slice = source.narrow(dim, c * part + (from - savedLow), to - from);
                    into.copy_(slice);
                    covered += to - from;
                }
                if (covered != mine)
                    throw new CheckpointException($"'{record.Name}' in {manifestFile}: the saved shards cover {covered} of the {mine} rows this rank needs in block {c} (a shard is missing).");
            }
            return staged;
        }

        private static (string Kind, int Dim, int Chunks) PlacementOf(string name, IReadOnlyDictionary<string, ParameterPlacement> placements) =>
            placements.TryGetValue(name, out var p) && p.Placement.Kind == PlacementKind.Shard ? (Sharded, p.Placement.Dim, p.Placement.Chunks) : (Replicated, 0, 1);

        private static long[] Logical(long[] local, string kind, int dim, int tp)
        {
            var shape = (long[])local.Clone();
            if (kind == Sharded) shape[dim] *= tp;
            return shape;
        }

        private static string Describe(string kind, int dim, int chunks) => kind == Replicated ? "replicated (R)" : chunks > 1 ? $"S({dim}) in {chunks} blocks" : $"S({dim})";

        public static string Hash(torch.Tensor tensor)
        {
            // The copy must outlive the span over its memory: a tensor the GC finalizes frees its storage.
            using var data = tensor.detach().cpu().contiguous();
            return Checksum(data.bytes);
        }

        /// <summary>XxHash3 (64-bit) of a shard's bytes, as hex: it finds any corruption a disk or copy makes, at memory speed.</summary>
        private static string Checksum(ReadOnlySpan<byte> bytes) => System.IO.Hashing.XxHash3.HashToUInt64(bytes).ToString("x16", System.Globalization.CultureInfo.InvariantCulture);

        /// <summary>Reads saved shards once each, checking file, length and checksum.</summary>
        private sealed class ShardReader(string directory)
        {
            private readonly Dictionary<(string, long), torch.Tensor> read = new();

            public torch.Tensor Read(TensorRecord record, ShardRecord shard)
            {
                if (read.TryGetValue((shard.File, shard.Offset), out var cached)) return cached;
                var path = Path.Combine(directory, shard.File);
                if (!File.Exists(path)) throw new CheckpointException($"{path} is missing (it holds '{record.Name}').");
                // Read straight into the tensor's memory: no managed copy of the shard (large arrays made the GC run often).
                var tensor = torch.empty(shard.Shape, Safetensors.ScalarType(record.Dtype));
                if (tensor.numel() * tensor.element_size() != shard.Length)
                    throw new CheckpointException($"{path}: '{record.Name}' has {shard.Length} bytes, not a {record.Dtype} tensor of shape [{string.Join(", ", shard.Shape)}].");
                try
                {
                    Safetensors.ReadRange(path, shard.Offset, tensor.bytes);
                }
                catch (InvalidDataException e)
                {
                    tensor.Dispose();
                    throw new CheckpointException($"{e.Message} (reading '{record.Name}')");
                }
                if (Checksum(tensor.bytes) != shard.Hash)
                {
                    tensor.Dispose();
                    throw new CheckpointException($"{path}: '{record.Name}' (bytes [{shard.Offset}, {shard.Offset + shard.Length})) does not match its checksum: the file is corrupt.");
                }
                return read[(shard.File, shard.Offset)] = tensor;
            }
        }
    }
}
