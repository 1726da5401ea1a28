using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Linq;
using ModelParallel;
using ModelParallel.Benchmarks;
using TorchSharp;
using static TorchSharp.torch;

// Step time (forward + backward + Adam) of a stack of MLP blocks:
//   generated partition at tp = 2  vs  the same partition hand-written with explicit collectives (target <= 1.03x)
//   single device (tp = 1)         vs  generated at tp = 2: scaling efficiency T1 / (2 * T2) (target >= 0.85)
//   generated at tp = 2 as 2 MPI processes (this program under mpiexec -bind-to core)  vs  as 2 threads
//   two single-device processes at once, one per core  vs  one alone: the machine's own ceiling on that efficiency
// Variants alternate round by round so machine noise hits all of them alike; medians are reported.
const long Width = 512, Hidden = 2048, Batch = 64;
const int Depth = 4;
if (args.Length > 0 && args[0] == "--child") return Child(args[1], int.Parse(args[2]));
int rounds = args.Length > 0 ? int.Parse(args[0]) : 5, steps = args.Length > 1 ? int.Parse(args[1]) : 40;

// Every measurement is its own process (ChildProcess): this driver never loads libtorch, so the MPI row times what a
// user's mpiexec job gets, and the thread rows start the same way.
var times = new Dictionary<string, List<double>> { ["single device"] = new(), ["generated tp=2"] = new(), ["hand-written tp=2"] = new(), ["generated tp=2 MPI"] = new(), ["2 x single at once"] = new() };
var variants = new (string Name, Func<double> Run)[]
{
    ("single device", () => ChildProcess.Threads($"--child single {steps}")),
    ("generated tp=2", () => ChildProcess.Threads($"--child generated {steps}")),
    ("hand-written tp=2", () => ChildProcess.Threads($"--child hand-written {steps}")),
    ("generated tp=2 MPI", () => ChildProcess.Mpi($"--child generated {steps}")),
    ("2 x single at once", () => ChildProcess.Together($"--child single {steps}")),
};
for (int round = 0; round < rounds; round++)
{
    // Rotate the order each round so no variant always runs first or last.
    for (int v = 0; v < variants.Length; v++)
    {
        var (name, run) = variants[(v + round) % variants.Length];
        times[name].Add(run());
    }
}

double Median(string key) => times[key].OrderBy(t => t).ElementAt(times[key].Count / 2);
foreach (var key in times.Keys) Console.WriteLine($"{key,-18} {Median(key):F2} ms/step (median of {rounds} rounds x {steps} steps)");
Console.WriteLine($"generated / hand-written at tp=2: {Median("generated tp=2") / Median("hand-written tp=2"):F3}x (target <= 1.03)");
double efficiency = Median("single device") / (2 * Median("generated tp=2")), ceiling = Median("single device") / Median("2 x single at once");
Console.WriteLine($"scaling efficiency T1 / (2 x T2): {efficiency:F3} (target >= 0.9)");
Console.WriteLine($"the machine's ceiling, T1 alone / T1 with another at once: {ceiling:F3}; the efficiency against it: {efficiency / ceiling:F3}");
Console.WriteLine($"MPI processes / in-process threads at tp=2: {Median("generated tp=2 MPI") / Median("generated tp=2"):F3}x (target <= 1.05)");
return 0;

// One variant as one process (ranks as threads), or as one rank of an mpiexec job.
int Child(string variant, int steps)
{
    torch.set_num_threads(1);
    var mesh = new MeshShape(tp: variant == "single" ? 1 : 2);
    return ChildProcess.Report(Ranks.Run(mesh, c => StepTiming.Stack(Stack(_ => variant == "hand-written"
        ? HandWritten(c.TensorParallel)
        : new GeneratedBlock(Width, Hidden)), new[] { Batch, Width }, steps)));
}

// The hand-written shards come from torch's global generator, which rank threads share, so the ranks' draws would
// differ and the optimizer's check of replicated parameters (which cannot know these are shards) would refuse them.
// Every rank draws its block from the same seed, one rank at a time: equal values, which a timing does not mind.
HandWrittenBlock HandWritten(ModelParallel.Communication.ICommunicator tp)
{
    lock (typeof(HandWrittenBlock))
    {
        torch.manual_seed(17);
        return new HandWrittenBlock(Width, Hidden, tp);
    }
}

nn.Module<Tensor, Tensor> Stack(Func<int, nn.Module<Tensor, Tensor>> block) =>
    nn.Sequential(Enumerable.Range(0, Depth).Select(i => ($"b{i}", block(i))).ToArray());
