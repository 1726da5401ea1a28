using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Globalization;
using System.Linq;
using ModelParallel;
using ModelParallel.Examples.Gpt.Model;
using ModelParallel.Examples.Gpt.Training;
using TorchSharp;

// Training throughput (tokens/s, forward + backward + AdamW) of the GPT example's default model on one global batch
// of 16 sequences × 64 tokens: one device against tp = 2, pp = 2 (1F1B, 4 micro-batches) and dp = 2, each as two
// threads of this process and as two processes under mpiexec -bind-to core. The rows alternate round by round, so
// machine noise hits all of them alike; medians are reported with each row's ratio to one device.
// Usage: GptStep [rounds] [steps]
int rounds = args.Length > 0 ? int.Parse(args[0], CultureInfo.InvariantCulture) : 3;
int steps = args.Length > 1 ? int.Parse(args[1], CultureInfo.InvariantCulture) : 8;
var config = new GptConfig(Vocabulary: 50257, Width: 128, Depth: 4, Heads: 4, Context: 64);
const long GlobalBatch = 16;
torch.set_num_threads(1);

if (args.Contains("--mpi"))
{
    // One measurement as one rank of an mpiexec job; rank 0 prints it for the parent.
    var mesh = MeshOf(args[Array.IndexOf(args, "--mpi") + 1]);
    var mine = Ranks.Run(mesh, _ => Measure(mesh));
    if (mine[0] > 0) Console.WriteLine(FormattableString.Invariant($"RESULT {mine[0]}"));
    return 0;
}

var rows = new (string Name, Func<double> Run)[]
{
    ("one device", () => Ranks.Run(new MeshShape(), _ => Measure(new MeshShape())).Max()),
    ("tp=2 threads", () => Ranks.Run(MeshOf("tp"), _ => Measure(MeshOf("tp"))).Max()),
    ("pp=2 threads", () => Ranks.Run(MeshOf("pp"), _ => Measure(MeshOf("pp"))).Max()),
    ("dp=2 threads", () => Ranks.Run(MeshOf("dp"), _ => Measure(MeshOf("dp"))).Max()),
    ("tp=2 MPI", () => UnderMpi("tp")),
    ("pp=2 MPI", () => UnderMpi("pp")),
    ("dp=2 MPI", () => UnderMpi("dp")),
};
var seconds = rows.ToDictionary(r => r.Name, _ => new List<double>());
for (int round = 0; round < rounds; round++)
    for (int v = 0; v < rows.Length; v++)
    {
        var (name, run) = rows[(v + round) % rows.Length];
        seconds[name].Add(run());
    }

double Median(string name) => seconds[name].OrderBy(t => t).ElementAt(seconds[name].Count / 2);
double tokens = GlobalBatch * config.Context, single = Median("one device");
Console.WriteLine($"GPT {config.Depth} blocks × width {config.Width}, vocabulary {config.Vocabulary}, {GlobalBatch} × {config.Context} tokens per step; medians of {rounds} rounds × {steps} steps");
foreach (var (name, _) in rows)
    Console.WriteLine($"{name,-14} {Median(name) * 1e3,8:F1} ms/step {tokens / Median(name),8:N0} tokens/s   {single / Median(name):F2}x one device");
return 0;

MeshShape MeshOf(string axis) => axis switch
{
    "tp" => new MeshShape(tp: 2),
    "pp" => new MeshShape(pp: 2),
    "dp" => new MeshShape(dp: 2),
    _ => new MeshShape(),
};

double UnderMpi(string axis)
{
    var start = new ProcessStartInfo("mpiexec", $"-n 2 -bind-to core dotnet \"{typeof(GptModel).Assembly.Location.Replace("Gpt.dll", "GptStep.dll")}\" 1 {steps} --mpi {axis}") { RedirectStandardOutput = true, UseShellExecute = false };
    using var job = Process.Start(start) ?? throw new InvalidOperationException("could not start mpiexec (install MPICH: apt-get install -y mpich libmpich-dev)");
    var output = job.StandardOutput.ReadToEnd();
    job.WaitForExit();
    var line = output.Split('\n').FirstOrDefault(l => l.StartsWith("RESULT ", StringComparison.Ordinal)) ?? throw new InvalidOperationException($"the MPI run failed (exit {job.ExitCode}):\n{output}");
    return double.Parse(line[7..], CultureInfo.InvariantCulture);
}

// Seconds per step on this rank (after two warm-up steps), on random tokens.
double Measure(MeshShape mesh)
{
    var options = new TrainingOptions(config, mesh) { Microbatches = mesh.Pp > 1 ? 4 : 1, Batch = GlobalBatch / mesh.Dp, Steps = steps + 2 };
    var training = new GptTraining(options);
    var context = RankContext.Current!;
    var tokens = torch.randint(config.Vocabulary, new[] { GlobalBatch, config.Context + 1 }, generator: new torch.Generator(7));
    var rows = tokens.narrow(0, context.Coordinates.Dp * options.Batch, options.Batch);
    var (input, target) = (rows.narrow(1, 0, config.Context).contiguous(), rows.narrow(1, 1, config.Context).contiguous());
    for (int i = 0; i < 2; i++) training.Step(i, input, target);
    context.World.Barrier();
    var clock = Stopwatch.StartNew();
    for (int i = 0; i < steps; i++) training.Step(i + 2, input, target);
    context.World.Barrier();
    return clock.Elapsed.TotalSeconds / steps;
}
