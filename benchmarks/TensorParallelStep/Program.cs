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
// Variants alternate round by round so machine noise hits all of them alike; medians are reported.
int rounds = args.Length > 0 ? int.Parse(args[0]) : 5, steps = args.Length > 1 ? int.Parse(args[1]) : 20;
const long Width = 512, Hidden = 2048, Batch = 64;
const int Depth = 4;
torch.set_num_threads(1);

if (args.Contains("--mpi"))
{
    // One measurement as one rank of an mpiexec job; rank 0 reports it to the parent.
    var mine = Ranks.Run(new MeshShape(tp: 2), c => Measure(() => Stack(_ => new GeneratedBlock(Width, Hidden))));
    if (mine[0] > 0) Console.WriteLine(FormattableString.Invariant($"RESULT {mine[0]}"));
    return 0;
}

var times = new Dictionary<string, List<double>> { ["single device"] = new(), ["generated tp=2"] = new(), ["hand-written tp=2"] = new(), ["generated tp=2 MPI"] = new() };
var variants = new (string Name, Func<double> Run)[]
{
    ("single device", () => Ranks.Run(new MeshShape(tp: 1), _ => Measure(() => Stack(_ => new GeneratedBlock(Width, Hidden)))).Max()),
    ("generated tp=2", () => Ranks.Run(new MeshShape(tp: 2), _ => Measure(() => Stack(_ => new GeneratedBlock(Width, Hidden)))).Max()),
    ("hand-written tp=2", () => Ranks.Run(new MeshShape(tp: 2), c => Measure(() => Stack(_ => new HandWrittenBlock(Width, Hidden, c.TensorParallel)))).Max()),
    ("generated tp=2 MPI", () => UnderMpi()),
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
Console.WriteLine($"scaling efficiency T1 / (2 x T2): {Median("single device") / (2 * Median("generated tp=2")):F3} (target >= 0.85)");
Console.WriteLine($"MPI processes / in-process threads at tp=2: {Median("generated tp=2 MPI") / Median("generated tp=2"):F3}x");
return 0;

double UnderMpi()
{
    var start = new ProcessStartInfo("mpiexec", $"-n 2 -bind-to core dotnet \"{typeof(GeneratedBlock).Assembly.Location}\" 1 {steps} --mpi") { RedirectStandardOutput = true, UseShellExecute = false };
    using var job = Process.Start(start) ?? throw new InvalidOperationException("could not start mpiexec (install MPICH)");
    var output = job.StandardOutput.ReadToEnd();
    job.WaitForExit();
    var line = output.Split('\n').FirstOrDefault(l => l.StartsWith("RESULT ")) ?? throw new InvalidOperationException($"the MPI run failed (exit {job.ExitCode}):\n{output}");
    return double.Parse(line[7..], System.Globalization.CultureInfo.InvariantCulture);
}

nn.Module<Tensor, Tensor> Stack(Func<int, nn.Module<Tensor, Tensor>> block) =>
    nn.Sequential(Enumerable.Range(0, Depth).Select(i => ($"b{i}", block(i))).ToArray());

double Measure(Func<nn.Module<Tensor, Tensor>> build)
{
    var model = build();
    var optimizer = torch.optim.Adam(model.parameters(), lr: 1e-4);
    using var generator = new torch.Generator(3);
    var x = torch.empty(Batch, Width).normal_(0, 1, generator);
    void Step()
    {
        using var scope = torch.NewDisposeScope();
        optimizer.zero_grad();
        model.forward(x).square().mean().backward();
        optimizer.step();
    }
    for (int i = 0; i < 3; i++) Step(); // warm-up
    RankContext.Current!.TensorParallel.Barrier();
    var clock = Stopwatch.StartNew();
    for (int i = 0; i < steps; i++) Step();
    RankContext.Current!.TensorParallel.Barrier();
    return clock.Elapsed.TotalMilliseconds / steps;
}
