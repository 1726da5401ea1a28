using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Globalization;
using System.Linq;
using ModelParallel;
using ModelParallel.Benchmarks;
using TorchSharp;

// All-reduce, all-gather and reduce-scatter of 1K to 16M float32 elements on 2 ranks:
//   MpiCommunicator in place on tensor storage  vs  raw MPI on a float[] of the same size (target >= 0.95)
//   and the in-process communicator (2 threads) for scale.
// Started normally, this measures the in-process communicator, then starts itself under
// `mpiexec -n 2 ... --mpi` for the MPI variants (taking turns batch by batch there), and prints the table.
// A third MPI variant, raw MPI on tensor storage, splits the ratio into what the wrapper costs and what
// the buffers' memory does. The comparison with raw MPI runs without the signature agreement; a second pass with it
// (the default) gives its cost per collective.
torch.set_num_threads(1);
if (args.Contains("--mpi"))
{
    // Without the signature agreement (RunOptions.CheckCollectives = false), the in-place path against raw MPI; then
    // with it (the default), what the agreement adds to each collective.
    foreach (var check in new[] { false, true })
    {
        Ranks.Run(new MeshShape(tp: 2), context =>
        {
            foreach (var size in Sizes.All)
                foreach (var op in Sizes.Operations)
                {
                    var seconds = MpiMeasurements.Measure(context, op, size);
                    if (context.Rank == 0) Console.WriteLine(FormattableString.Invariant($"{(check ? "CHECKED" : "RESULT")} {op} {size} {string.Join(' ', seconds)}"));
                }
        }, new RunOptions { CheckCollectives = check });
    }
    return 0;
}

var inProcess = new Dictionary<(string, long), double>();
Ranks.Run(new MeshShape(tp: 2), context =>
{
    foreach (var size in Sizes.All)
        foreach (var op in Sizes.Operations)
        {
            var seconds = Timing.Median(context.TensorParallel, Sizes.Repetitions(size), Sizes.Batch(size), Collectives.Tensor(context.TensorParallel, op, size));
            if (context.Rank == 0) inProcess[(op, size)] = seconds;
        }
});

var self = typeof(Sizes).Assembly.Location;
var start = new ProcessStartInfo("mpiexec", $"-n 2 dotnet \"{self}\" --mpi") { RedirectStandardOutput = true, UseShellExecute = false };
using var job = Process.Start(start) ?? throw new InvalidOperationException("could not start mpiexec");
var output = job.StandardOutput.ReadToEnd();
job.WaitForExit();
if (job.ExitCode != 0) throw new InvalidOperationException($"the MPI run failed (exit {job.ExitCode}):\n{output}");

var checkedRuns = output.Split('\n').Where(l => l.StartsWith("CHECKED ")).Select(l => l.Split(' '))
    .ToDictionary(f => (f[1], long.Parse(f[2], CultureInfo.InvariantCulture)), f => (Tensor: double.Parse(f[3], CultureInfo.InvariantCulture), Raw: double.Parse(f[4], CultureInfo.InvariantCulture)));
Console.WriteLine("| operation | elements | tensor in place (µs) | raw MPI float[] (µs) | raw MPI on tensor storage (µs) | tensor / raw speed | tensor / raw on tensor storage | checked tensor (µs) | checked / raw speed | in-process (µs) |");
Console.WriteLine("|---|---|---|---|---|---|---|---|---|---|");
double worst = double.MaxValue, worstLarge = double.MaxValue;
foreach (var line in output.Split('\n').Where(l => l.StartsWith("RESULT ")))
{
    var f = line.Split(' ');
    string op = f[1];
    long size = long.Parse(f[2], CultureInfo.InvariantCulture);
    double tensor = double.Parse(f[3], CultureInfo.InvariantCulture), raw = double.Parse(f[4], CultureInfo.InvariantCulture);
    double rawOnStorage = double.Parse(f[5], CultureInfo.InvariantCulture);
    double ratio = raw / tensor;
    worst = Math.Min(worst, ratio);
    if (size >= 1 << 18) worstLarge = Math.Min(worstLarge, ratio);
    var (checkedTensor, checkedRaw) = checkedRuns[(op, size)];
    Console.WriteLine($"| {op} | {size:N0} | {tensor * 1e6:F2} | {raw * 1e6:F2} | {rawOnStorage * 1e6:F2} | {ratio:F3} | {rawOnStorage / tensor:F3} | {checkedTensor * 1e6:F2} | {checkedRaw / checkedTensor:F3} | {inProcess[(op, size)] * 1e6:F1} |");
}
Console.WriteLine($"lowest tensor / raw speed: {worst:F3} over all sizes, {worstLarge:F3} at 256K elements and above (target >= 0.95)");
return 0;
