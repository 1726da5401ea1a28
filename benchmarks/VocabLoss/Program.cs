using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Globalization;
using System.IO;
using System.Linq;
using ModelParallel;
using ModelParallel.Layers;
using TorchSharp;

// Forward and backward of the language-model loss on GPT-2-sized logits (16 × 64 tokens; 50257 ids, padded to 50432
// for the vocabulary-parallel head) against the baseline a single-device user has: torch's cross_entropy over the
// same logits. VocabParallelLoss runs on one device and at tp = 2 (two threads, each with half the columns). Rows
// alternate round by round, one intra-op thread per rank; each figure is the median over rounds of the mean of
// `repeats` passes after one warm-up pass.
// Usage: VocabLoss [rounds] [repeats]
int rounds = args.Length > 0 ? int.Parse(args[0], CultureInfo.InvariantCulture) : 5;
int repeats = args.Length > 1 ? int.Parse(args[1], CultureInfo.InvariantCulture) : 5;
const long Tokens = 16 * 64, Vocabulary = 50257, Padded = 50432;
torch.set_num_threads(1);
// A parallel run sets the allocator to keep freed memory (RunOptions.KeepFreedMemory) for the rest of the process: one
// first, so that every row, one device too, reuses its N × V buffers instead of faulting them in afresh.
Ranks.Run(new MeshShape(tp: 2), _ => 0);

var rows = new (string Name, Func<(double, double)> Run)[]
{
    ("torch cross_entropy, one device", () => Time(Tokens, Vocabulary, repeats, (x, t) => torch.nn.functional.cross_entropy(x, t))),
    ("VocabParallelLoss, one device", () => Time(Tokens, Padded, repeats, (x, t) => new VocabParallelLoss(Vocabulary).Compute(x, t))),
    ("VocabParallelLoss, tp=2 threads", () => Ranks.Run(new MeshShape(tp: 2), _ => Time(Tokens, Padded / 2, repeats, (x, t) => new VocabParallelLoss(Vocabulary).Compute(x, t)))[0]),
};
var times = rows.ToDictionary(r => r.Name, _ => new List<double>());
var faults = rows.ToDictionary(r => r.Name, _ => new List<double>());
for (int round = 0; round < rounds; round++)
    for (int r = 0; r < rows.Length; r++)
    {
        var (name, run) = rows[(r + round) % rows.Length];
        var (ms, faulted) = run();
        times[name].Add(ms);
        faults[name].Add(faulted);
    }

double Median(string name, Dictionary<string, List<double>>? of = null) { var sorted = (of ?? times)[name].Order().ToList(); return sorted[sorted.Count / 2]; }
double torchMs = Median(rows[0].Name), oneMs = Median(rows[1].Name), tpMs = Median(rows[2].Name);
Console.WriteLine(FormattableString.Invariant($"loss forward + backward, {Tokens} tokens × {Vocabulary} ids; medians of {rounds} rounds × {repeats} passes"));
foreach (var (name, _) in rows)
    Console.WriteLine(FormattableString.Invariant($"  {name,-34} {Median(name),8:F1} ms   {Median(name, faults),9:F0} page faults (process)   [{string.Join(", ", times[name].Select(t => t.ToString("F1", CultureInfo.InvariantCulture)))}]"));
Console.WriteLine(FormattableString.Invariant($"VocabParallelLoss / torch cross_entropy, one device: {oneMs / torchMs:F2}"));
Console.WriteLine(FormattableString.Invariant($"tp=2 per rank / one device: {tpMs / oneMs:F2} (ideal 0.50)"));
return 0;

// Milliseconds per forward and backward of `loss` on leaf logits [tokens, columns] (normal × 3, seed 5) and uniform
// targets (seed 6), the gradient dropped after each pass; between barriers when inside a run. Also the process's page
// faults per pass.
static (double Milliseconds, double Faults) Time(long tokens, long columns, int repeats, Func<torch.Tensor, torch.Tensor, torch.Tensor> loss)
{
    var context = RankContext.Current;
    using var generator = new torch.Generator((ulong)(5 + (context?.Coordinates.Tp ?? 0)));
    using var logits = (torch.randn(tokens, columns, generator: generator) * 3).requires_grad_(true);
    using var targets = torch.randint(Vocabulary, new[] { tokens }, generator: new torch.Generator(6));
    void Pass()
    {
        using var scope = torch.NewDisposeScope();
        loss(logits, targets).backward();
        logits.grad?.Dispose();
        logits.grad = null;
    }
    Pass();
    context?.World.Barrier();
    long faults = MinorFaults();
    var clock = Stopwatch.StartNew();
    for (int i = 0; i < repeats; i++) Pass();
    context?.World.Barrier();
    return (clock.Elapsed.TotalMilliseconds / repeats, (MinorFaults() - faults) / (double)repeats);
}
// The process's minor page faults so far (Linux; 0 elsewhere): every rank's, on threads.
static long MinorFaults() => File.Exists("/proc/self/stat") ? long.Parse(File.ReadAllText("/proc/self/stat").Split(' ')[9], CultureInfo.InvariantCulture) : 0;
