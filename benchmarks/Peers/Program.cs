using System;
using System.Collections.Generic;
using System.Globalization;
using System.Linq;
using ModelParallel.Benchmarks;

// Ours against PyTorch 1.13 (Debian's python3-torch, gloo) on this machine, on the same models partitioned the same way:
// the MLP stack of benchmarks/TensorParallelStep, a stack of two transformer blocks, and the GPT example's default
// model, at one device, tp = 2, dp = 2 and (GPT) pp = 2. Ours runs as two threads and as two mpiexec processes
// (-bind-to core); PyTorch as two gloo processes, each bound to its core. One intra-op thread per rank everywhere.
// Every measurement is its own process; within a round they take turns in an order rotated round by round, and each
// cell is the median over rounds. Usage: Peers [rounds] [models, comma-separated: mlp,block,gpt]
//        Peers --ours MODEL MESH STEPS   (one measurement of ours, as the driver starts it)
if (args.Length > 0 && args[0] == "--profile") return Profile.Run();
if (args.Length > 0 && args[0] == "--matmul") return Profile.Matmul();
if (args.Length > 0 && args[0] == "--ours") return Ours.Run(args[1], args[2], int.Parse(args[3], CultureInfo.InvariantCulture));

int rounds = args.Length > 0 ? int.Parse(args[0], CultureInfo.InvariantCulture) : 3;
var models = args.Length > 1 ? args[1].Split(',') : new[] { "mlp", "block", "gpt" };
if (!Launch.EnsurePrerequisites()) return 2;
var steps = new Dictionary<string, int> { ["mlp"] = 40, ["block"] = 40, ["gpt"] = 4 };
var runs = (from model in models
            from mesh in model == "gpt" ? new[] { "one", "tp", "dp", "pp" } : new[] { "one", "tp", "dp" }
            from side in mesh == "one" ? new[] { Side.Threads, Side.PyTorch } : new[] { Side.Threads, Side.Mpi, Side.PyTorch }
            select (Model: model, Mesh: mesh, Side: side)).ToArray();
var times = runs.ToDictionary(r => r, _ => new List<double>());
for (int round = 0; round < rounds; round++)
{
    // Rotate by a stride prime to the count, so each run changes neighbours as well as position.
    for (int i = 0; i < runs.Length; i++)
    {
        var run = runs[(i * 7 + round * 5) % runs.Length];
        double ms = Launch.Measure(run.Side, run.Model, run.Mesh, steps[run.Model]);
        times[run].Add(ms);
        Console.WriteLine(FormattableString.Invariant($"round {round + 1}/{rounds}: {run.Model} {run.Mesh} {run.Side}: {ms:F1} ms/step"));
    }
}

double Median((string, string, Side) run) => times[run].OrderBy(t => t).ElementAt(times[run].Count / 2);
Console.WriteLine();
Console.WriteLine($"medians of {rounds} rounds (ms per step; ratio < 1 means ours is faster)");
Console.WriteLine("| model | mesh | ours, threads | ours, MPI | PyTorch | threads / PyTorch | MPI / PyTorch | MPI / threads |");
Console.WriteLine("|---|---|---|---|---|---|---|---|");
foreach (var group in runs.GroupBy(r => (r.Model, r.Mesh)))
{
    var (model, mesh) = group.Key;
    double threads = Median((model, mesh, Side.Threads)), torch = Median((model, mesh, Side.PyTorch));
    string mpi = "", mpiRatio = "", mpiThreads = "";
    if (mesh != "one")
    {
        double m = Median((model, mesh, Side.Mpi));
        (mpi, mpiRatio, mpiThreads) = (F(m), R(m / torch), R(m / threads));
    }
    Console.WriteLine($"| {model} | {(mesh == "one" ? "one device" : mesh + "=2")} | {F(threads)} | {mpi} | {F(torch)} | {R(threads / torch)} | {mpiRatio} | {mpiThreads} |");
}
Console.WriteLine();
foreach (var model in models)
{
    // T1 is the one-device run of the same side; for MPI, ours on one device (one process either way).
    double Efficiency(Side side) => Median((model, "one", side == Side.PyTorch ? Side.PyTorch : Side.Threads)) / (2 * Median((model, "tp", side)));
    Console.WriteLine($"{model}: tp=2 scaling efficiency T1 / (2·T2): ours threads {R(Efficiency(Side.Threads))}, ours MPI {R(Efficiency(Side.Mpi))}, PyTorch {R(Efficiency(Side.PyTorch))}");
}
return 0;

static string F(double ms) => ms.ToString("F1", CultureInfo.InvariantCulture);
static string R(double ratio) => ratio.ToString("F3", CultureInfo.InvariantCulture);
