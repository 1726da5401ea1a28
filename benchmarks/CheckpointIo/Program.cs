using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Globalization;
using System.IO;
using System.Linq;
using ModelParallel;
using ModelParallel.Checkpointing;
using ModelParallel.Examples.Gpt.Model;
using ModelParallel.Examples.Gpt.Training;
using TorchSharp;

// Save and load time and bytes per rank of Checkpoint (the GPT example's default model with its AdamW state) at
// tp = 1, 2 and 4 as threads, against the baseline a single-device user has: TorchSharp's Module.save (its state_dict
// in one file) plus the optimizer's save_state_dict, then load of both. Rows alternate round by round; medians.
// Usage: CheckpointIo [rounds]
int rounds = args.Length > 0 ? int.Parse(args[0], CultureInfo.InvariantCulture) : 5;
var config = new GptConfig(Vocabulary: 50257, Width: 128, Depth: 4, Heads: 4, Context: 64);
torch.set_num_threads(1);
var root = Directory.CreateTempSubdirectory("checkpoint-io-").FullName;
var times = new Dictionary<string, List<(double Save, double Load, long Bytes)>>();
var rows = new (string Name, Func<(double, double, long)> Run)[]
{
    ("single device: Module.save + save_state_dict", Baseline),
    ("Checkpoint, tp=1", () => Sharded(1)),
    ("Checkpoint, tp=2", () => Sharded(2)),
    ("Checkpoint, tp=4", () => Sharded(4)),
};
foreach (var (name, _) in rows) times[name] = new();
for (int round = 0; round < rounds; round++)
    for (int r = 0; r < rows.Length; r++)
    {
        var (name, run) = rows[(r + round) % rows.Length];
        times[name].Add(run());
    }
Directory.Delete(root, recursive: true);

double Median(IEnumerable<double> values) { var sorted = values.OrderBy(v => v).ToList(); return sorted[sorted.Count / 2]; }
var baseline = times[rows[0].Name];
Console.WriteLine($"GPT {config.Parameters(1) / 1e6:F1} M parameters with AdamW state; medians of {rounds} rounds");
foreach (var (name, _) in rows)
{
    var t = times[name];
    Console.WriteLine($"{name,-46} save {Median(t.Select(x => x.Save)) * 1e3,7:F1} ms ({Median(baseline.Select(x => x.Save)) / Median(t.Select(x => x.Save)):F2}x baseline)  "
        + $"load {Median(t.Select(x => x.Load)) * 1e3,7:F1} ms ({Median(baseline.Select(x => x.Load)) / Median(t.Select(x => x.Load)):F2}x)  largest file per rank {t[0].Bytes / 1e6,6:F1} MB");
}
return 0;

(double, double, long) Baseline()
{
    var model = new GptModel(config, config.PaddedVocabulary(1));
    var optimizer = torch.optim.AdamW(model.parameters());
    Step(model, optimizer);
    string weights = Path.Combine(root, "model.bin"), state = Path.Combine(root, "optimizer.bin");
    var clock = Stopwatch.StartNew();
    model.save(weights);
    optimizer.save_state_dict(state);
    double save = clock.Elapsed.TotalSeconds;
    clock.Restart();
    model.load(weights);
    optimizer.load_state_dict(state);
    double load = clock.Elapsed.TotalSeconds;
    long bytes = new FileInfo(weights).Length + new FileInfo(state).Length;
    File.Delete(weights);
    File.Delete(state);
    return (save, load, bytes);
}

(double, double, long) Sharded(int tp)
{
    var folder = Path.Combine(root, $"tp{tp}-{Guid.NewGuid():N}");
    var options = new TrainingOptions(config, new MeshShape(tp: tp)) { Microbatches = 1, Batch = 2 };
    var results = Ranks.Run(options.Mesh, context =>
    {
        var training = new GptTraining(options);
        using var tokens = torch.randint(config.Vocabulary, new long[] { 2, config.Context + 1 }, generator: new torch.Generator(3));
        training.Step(0, tokens.narrow(1, 0, config.Context).contiguous(), tokens.narrow(1, 1, config.Context).contiguous());
        context.World.Barrier();
        var clock = Stopwatch.StartNew();
        var saved = training.Save(folder, new CheckpointState { Step = 1 });
        double save = clock.Elapsed.TotalSeconds;
        context.World.Barrier();
        clock.Restart();
        training.Load(folder);
        double load = clock.Elapsed.TotalSeconds;
        var file = Path.Combine(saved, $"rank-{context.Rank:D5}.safetensors");
        return (save, load, File.Exists(file) ? new FileInfo(file).Length : 0);
    });
    Directory.Delete(folder, recursive: true);
    return (results.Max(r => r.save), results.Max(r => r.load), results.Max(r => r.Item3));
}

void Step(GptModel model, torch.optim.Optimizer optimizer)
{
    using var tokens = torch.randint(config.Vocabulary, new long[] { 2, config.Context + 1 }, generator: new torch.Generator(3));
    var logits = model.forward(tokens.narrow(1, 0, config.Context));
    torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[^1]), tokens.narrow(1, 1, config.Context).reshape(-1)).backward();
    optimizer.step();
}
