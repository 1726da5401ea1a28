using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Globalization;
using System.Linq;
using ModelParallel;
using ModelParallel.Benchmarks;
using ModelParallel.Examples.Gpt.Model;
using TorchSharp;

// Training throughput (tokens/s, forward + backward + AdamW) of the GPT example's model on one global batch of
// 16 sequences × 64 tokens:
//   - the default model (width 128): one device against tp = 2, pp = 2 (1F1B, 4 micro-batches) and dp = 2, each as
//     two threads of one process and as two processes under mpiexec -bind-to core;
//   - utilisation at width 512: model FLOP/s per rank against this machine's single-thread fp32 matmul rate
//     (2048 × 2048, measured in the same run), on one device (target >= 0.5) and at tp = 2 (per rank, target >= 0.9 × one device).
// Every measurement is its own process (ChildProcess), and the rows alternate round by round, so machine noise hits
// all of them alike; medians are reported. Usage: GptStep [rounds] [steps]
if (args.Length > 0 && args[0] == "--child") return Child(args[1], long.Parse(args[2], CultureInfo.InvariantCulture), int.Parse(args[3], CultureInfo.InvariantCulture));
if (args.Length > 0 && args[0] == "--matmul") return Matmul();
int rounds = args.Length > 0 ? int.Parse(args[0], CultureInfo.InvariantCulture) : 3;
int steps = args.Length > 1 ? int.Parse(args[1], CultureInfo.InvariantCulture) : 8;

var rows = new (string Name, Func<double> Run)[]
{
    ("one device", () => ChildProcess.Threads($"--child one 128 {steps}")),
    ("tp=2 threads", () => ChildProcess.Threads($"--child tp 128 {steps}")),
    ("pp=2 threads", () => ChildProcess.Threads($"--child pp 128 {steps}")),
    ("dp=2 threads", () => ChildProcess.Threads($"--child dp 128 {steps}")),
    ("tp=2 MPI", () => ChildProcess.Mpi($"--child tp 128 {steps}")),
    ("pp=2 MPI", () => ChildProcess.Mpi($"--child pp 128 {steps}")),
    ("dp=2 MPI", () => ChildProcess.Mpi($"--child dp 128 {steps}")),
    ("width 512, one device", () => ChildProcess.Threads($"--child one 512 3")),
    ("width 512, tp=2 threads", () => ChildProcess.Threads($"--child tp 512 3")),
    ("matmul GFLOP/s", () => ChildProcess.Threads("--matmul")),
};
var seconds = rows.ToDictionary(r => r.Name, _ => new List<double>());
for (int round = 0; round < rounds; round++)
    for (int v = 0; v < rows.Length; v++)
    {
        var (name, run) = rows[(v + round) % rows.Length];
        seconds[name].Add(run());
    }

double Median(string name) => seconds[name].OrderBy(t => t).ElementAt(seconds[name].Count / 2);
var small = Config(128);
double tokens = GptTiming.GlobalBatch * small.Context, single = Median("one device");
Console.WriteLine($"GPT {small.Depth} blocks × width {small.Width}, vocabulary {small.Vocabulary}, {GptTiming.GlobalBatch} × {small.Context} tokens per step; medians of {rounds} rounds × {steps} steps");
foreach (var (name, _) in rows.Take(7))
    Console.WriteLine($"{name,-14} {Median(name) * 1e3,8:F1} ms/step {tokens / Median(name),8:N0} tokens/s   {single / Median(name):F2}x one device");

// Model FLOPs as PaLM counts them (GptConfig.FlopsPerToken), of the tp = 1 model for both rows: padding to 128 × tp
// adds columns a tp = 2 run computes but the model does not need.
var wide = Config(512);
double flops = wide.FlopsPerToken(1) * tokens, rate = Median("matmul GFLOP/s") * 1e9;
double one = flops / Median("width 512, one device"), perRank = flops / Median("width 512, tp=2 threads") / 2;
Console.WriteLine();
Console.WriteLine(FormattableString.Invariant($"utilisation at width 512 (single-thread fp32 matmul 2048 × 2048: {rate / 1e9:F1} GFLOP/s)"));
Console.WriteLine(FormattableString.Invariant($"one device      {one / 1e9,6:F1} GFLOP/s model   {one / rate:F2} of the matmul rate (target >= 0.5)"));
Console.WriteLine(FormattableString.Invariant($"tp=2, per rank  {perRank / 1e9,6:F1} GFLOP/s model   {perRank / rate:F2} of the matmul rate, {perRank / one:F2} × one device (target >= 0.9)"));
return 0;

static GptConfig Config(long width) => new(Vocabulary: 50257, Width: width, Depth: 4, Heads: width / 32, Context: 64);

// One row as one process (ranks as threads), or as one rank of an mpiexec job: seconds per step after a warm-up of at
// least two steps and StepTiming.Warmup, on random tokens.
static int Child(string axis, long width, int steps)
{
    torch.set_num_threads(1);
    var mesh = axis switch { "tp" => new MeshShape(tp: 2), "pp" => new MeshShape(pp: 2), "dp" => new MeshShape(dp: 2), _ => new MeshShape() };
    var config = Config(width);
    return ChildProcess.Report(Ranks.Run(mesh, _ => GptTiming.Milliseconds(config, mesh, warmup: 2, steps) / 1e3));
}

// The machine's single-thread fp32 matmul rate in GFLOP/s: the median of 5 products of 2048 × 2048 matrices.
static int Matmul()
{
    torch.set_num_threads(1);
    using var a = torch.randn(2048, 2048);
    using var b = torch.randn(2048, 2048);
    torch.matmul(a, b).Dispose();
    var times = new List<double>();
    for (int i = 0; i < 5; i++)
    {
        var clock = Stopwatch.StartNew();
        torch.matmul(a, b).Dispose();
        times.Add(clock.Elapsed.TotalSeconds);
    }
    Console.WriteLine(FormattableString.Invariant($"RESULT {2.0 * 2048 * 2048 * 2048 / times.Order().ElementAt(2) / 1e9}"));
    return 0;
}
