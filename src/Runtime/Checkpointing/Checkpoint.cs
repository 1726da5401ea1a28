using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Text.Json;
using TorchSharp;

namespace ModelParallel.Checkpointing
{
    /// <summary>
    /// Sharded, atomic, checksummed checkpoints that load into any mesh. <see cref="Save"/> has every rank write only
    /// what it holds (its tp shards, once per dp group; replicated tensors once per pp stage) to its own safetensors
    /// file, in parallel; rank 0 writes the manifest, commits the directory by rename and only then moves
    /// <c>latest</c>. <see cref="Load"/> checks the manifest against the model, reads only the saved shards that
    /// overlap this rank's own, verifies their checksums, and copies nothing unless every rank found everything.
    /// Inside <c>Ranks.Run</c> both are collectives over the world: every rank calls them.
    /// </summary>
    public static class Checkpoint
    {
        internal const string Manifest = "manifest.json", Latest = "latest";

        /// <summary>Saves into <paramref name="root"/>/step-NNNNNNNN and points <c>latest</c> at it; keeps the newest <paramref name="keep"/>.</summary>
        /// <returns>The committed checkpoint's directory.</returns>
        public static string Save(string root, torch.nn.Module model, torch.optim.Optimizer? optimizer, CheckpointState state, int keep = 3)
        {
            ArgumentNullException.ThrowIfNull(model);
            ArgumentNullException.ThrowIfNull(state);
            if (keep < 1) throw new ArgumentOutOfRangeException(nameof(keep), keep, "Keep at least one checkpoint.");
            var context = RankContext.Current;
            context?.ThrowIfDeferredFailure();
            int rank = context?.Rank ?? 0;
            var name = $"step-{state.Step:D8}";
            string partial = Path.Combine(root, name + ".partial"), final = Path.Combine(root, name);
            var problem = "";
            if (rank == 0)
            {
                Directory.CreateDirectory(root);
                var latest = Path.Combine(root, Latest);
                bool pointed = File.Exists(latest) && File.ReadAllText(latest).Trim() == name;
                if (Directory.Exists(final) && pointed) problem = $"{final} exists already: a checkpoint of step {state.Step} was committed before.";
                else
                {
                    if (Directory.Exists(partial)) Directory.Delete(partial, recursive: true); // a save that crashed
                    // Renamed but never pointed at: a save that crashed between its two renames; a resumed run redoes it.
                    if (Directory.Exists(final)) Directory.Delete(final, recursive: true);
                    Directory.CreateDirectory(partial);
                }
            }
            ThrowIfAny(context, problem);

            var shards = ShardSet.Local(model, optimizer, context);
            var file = $"rank-{rank:D5}.safetensors";
            var records = new List<TensorRecord>();
            if (shards.Count > 0)
            {
                var entries = Safetensors.Write(Path.Combine(partial, file), shards.Select(s => (s.Name, s.Tensor)).ToList());
                records.AddRange(shards.Zip(entries, (s, e) => new TensorRecord(s.Name, s.LogicalShape, e.Dtype, s.Placement, s.Dim, s.Chunks,
                    new List<ShardRecord> { new(file, e.Offset, e.Length, e.Shape, s.TpRank, s.TpSize, ShardSet.Hash(s.Tensor)) })));
            }
            var all = Gather(context, JsonSerializer.Serialize(records));
            var dropout = Gather(context, (context?.DropoutCalls ?? 0).ToString(System.Globalization.CultureInfo.InvariantCulture));
            if (rank == 0)
            {
                var manifest = new CheckpointManifest
                {
                    Dp = context?.Mesh.Dp ?? 1, Pp = context?.Mesh.Pp ?? 1, Tp = context?.Mesh.Tp ?? 1,
                    Step = state.Step, DataPosition = state.DataPosition,
                    Optimizer = optimizer is null ? null : OptimizerStates.Name(optimizer),
                    Metadata = new Dictionary<string, string>(state.Metadata),
                    DropoutCalls = dropout.Select(d => long.Parse(d, System.Globalization.CultureInfo.InvariantCulture)).ToList(),
                    Tensors = Merge(all.SelectMany(text => JsonSerializer.Deserialize<List<TensorRecord>>(text)!)),
                };
                DurableFiles.ReplaceText(Path.Combine(partial, Manifest), JsonSerializer.Serialize(manifest, new JsonSerializerOptions { WriteIndented = true }));
                DurableFiles.SyncDirectory(partial);
                Directory.Move(partial, final);
                DurableFiles.SyncDirectory(root);
                DurableFiles.ReplaceText(Path.Combine(root, Latest), name);
                Prune(root, keep, name);
            }
            context?.World.Barrier(); // nobody goes on before the checkpoint is committed
            return final;
        }

        /// <summary>
        /// Loads a checkpoint (a directory with a manifest, or a root whose <c>latest</c> names one) into
        /// <paramref name="model"/> and <paramref name="optimizer"/> on this mesh, whatever mesh saved it. On any problem
        /// (a missing or truncated file, a checksum that does not match, another model's names or shapes, another
        /// dtype or optimizer) every rank throws <see cref="CheckpointException"/> naming the file and tensor, and
        /// nothing was changed.
        /// </summary>
        public static CheckpointState Load(string path, torch.nn.Module model, torch.optim.Optimizer? optimizer)
        {
            ArgumentNullException.ThrowIfNull(model);
            var context = RankContext.Current;
            context?.ThrowIfDeferredFailure();
            CheckpointManifest? manifest = null;
            List<(torch.Tensor Target, torch.Tensor Staged)> copies = new();
            List<(Action<long> Set, long Step)> steps = new();
            string problem = "";
            try
            {
                var directory = Resolve(path);
                manifest = ReadManifest(directory);
                (copies, steps) = ShardSet.Stage(directory, manifest, model, optimizer, context);
            }
            catch (Exception e) when (e is CheckpointException or IOException or InvalidDataException or JsonException or UnauthorizedAccessException)
            {
                problem = $"rank {context?.Rank ?? 0}: {e.Message}";
            }
            ThrowIfAny(context, problem);
            using (torch.no_grad())
            {
                foreach (var (target, staged) in copies) target.copy_(staged);
            }
            foreach (var (set, step) in steps) set(step);
            // Dropout streams resume where they were on the mesh that saved them; on another mesh the ranks' streams
            // are other streams anyway (they depend on the tp and dp coordinates), so they start afresh.
            if (context is not null && manifest!.Dp == context.Mesh.Dp && manifest.Pp == context.Mesh.Pp && manifest.Tp == context.Mesh.Tp
                && manifest.DropoutCalls.Count == context.Mesh.World)
                context.DropoutCalls = manifest.DropoutCalls[context.Rank];
            return new CheckpointState { Step = manifest!.Step, DataPosition = manifest.DataPosition, Metadata = manifest.Metadata };
        }

        /// <summary>The logical (single-device) parameters of a checkpoint, assembled from its shards, optimizer state left out.</summary>
        public static Dictionary<string, torch.Tensor> Consolidate(string path)
        {
            var directory = Resolve(path);
            return ShardSet.Logical(directory, ReadManifest(directory), name => !name.Contains("::", StringComparison.Ordinal));
        }

        /// <summary>The logical shape of every parameter in a checkpoint, from its manifest (no tensor is read).</summary>
        public static IReadOnlyDictionary<string, long[]> Shapes(string path) =>
            ReadManifest(Resolve(path)).Tensors.Where(t => !t.Name.Contains("::", StringComparison.Ordinal)).ToDictionary(t => t.Name, t => t.Shape);

        /// <summary>Writes a single-device state dict as one safetensors file (the format PyTorch's safetensors reads).</summary>
        public static void SaveStateDict(string file, IReadOnlyDictionary<string, torch.Tensor> state)
        {
            if (File.Exists(file)) File.Delete(file);
            Safetensors.Write(file, state.OrderBy(kv => kv.Key, StringComparer.Ordinal).Select(kv => (kv.Key, kv.Value)).ToList());
        }

        /// <summary>Reads a safetensors state dict (for <see cref="LogicalState.Load"/>, to start a run from single-device weights).</summary>
        public static Dictionary<string, torch.Tensor> ReadStateDict(string file) =>
            Safetensors.ReadHeader(file).ToDictionary(e => e.Name, e => Safetensors.ToTensor(Safetensors.ReadRange(file, e.Offset, e.Length), e.Dtype, e.Shape));

        internal static string Resolve(string path)
        {
            if (File.Exists(Path.Combine(path, Manifest))) return path;
            var latest = Path.Combine(path, Latest);
            if (File.Exists(latest)) return Path.Combine(path, File.ReadAllText(latest).Trim());
            if (Directory.Exists(path) && Directory.GetFiles(path, "rank-*.safetensors").Length > 0)
                throw new CheckpointException($"{Path.Combine(path, Manifest)} is missing: the save did not complete, or the file was removed.");
            throw new CheckpointException($"{path} is not a checkpoint: it has neither {Manifest} nor a '{Latest}' pointer.");
        }

        private static CheckpointManifest ReadManifest(string directory)
        {
            var file = Path.Combine(directory, Manifest);
            if (!File.Exists(file)) throw new CheckpointException($"{file} is missing.");
            var manifest = JsonSerializer.Deserialize<CheckpointManifest>(File.ReadAllText(file)) ?? throw new CheckpointException($"{file} is empty.");
            if (manifest.Format != 1) throw new CheckpointException($"{file}: format {manifest.Format} is not one this version reads (1).");
            return manifest;
        }

        private static List<TensorRecord> Merge(IEnumerable<TensorRecord> parts) =>
            parts.GroupBy(r => r.Name, StringComparer.Ordinal).OrderBy(g => g.Key, StringComparer.Ordinal)
                .Select(g => g.First() with { Shards = g.SelectMany(r => r.Shards).OrderBy(s => s.TpRank).ToList() }).ToList();

        private static void Prune(string root, int keep, string current)
        {
            var committed = Directory.GetDirectories(root, "step-*").Select(Path.GetFileName).Where(n => !n!.EndsWith(".partial", StringComparison.Ordinal))
                .OrderByDescending(n => n, StringComparer.Ordinal).ToList();
            foreach (var old in committed.Skip(keep).Where(n => n != current)) Directory.Delete(Path.Combine(root, old!), recursive: true);
            DurableFiles.SyncDirectory(root);
        }

        /// <summary>Every rank's text, in rank order (a world all-gather; outside a run, this rank's alone).</summary>
        internal static string[] Gather(RankContext? context, string text)
        {
            if (context is null || context.Mesh.World == 1) return new[] { text };
            var bytes = System.Text.Encoding.UTF8.GetBytes(text);
            using var length = torch.tensor(new long[] { bytes.Length });
            using var lengths = context.World.AllGather(length, 0);
            var sizes = lengths.data<long>().ToArray();
            if (sizes.Max() == 0) return sizes.Select(_ => "").ToArray();
            var padded = new long[sizes.Max()];
            for (int i = 0; i < bytes.Length; i++) padded[i] = bytes[i];
            using var mine = torch.tensor(padded);
            using var gathered = context.World.AllGather(mine, 0);
            var values = gathered.data<long>().ToArray();
            return sizes.Select((size, r) => System.Text.Encoding.UTF8.GetString(values.Skip(r * padded.Length).Take((int)size).Select(v => (byte)v).ToArray())).ToArray();
        }

        /// <summary>Every rank learns every rank's problem; all throw the first, so the error a run reports is the real one.</summary>
        private static void ThrowIfAny(RankContext? context, string problem)
        {
            var first = Gather(context, problem).FirstOrDefault(p => p.Length > 0);
            if (first is not null) throw new CheckpointException(first);
        }
    }
}
