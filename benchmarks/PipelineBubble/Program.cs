using System;
using System.Linq;
using ModelParallel;
using ModelParallel.Benchmarks;
using ModelParallel.Pipelining;
using TorchSharp;
using static TorchSharp.torch;

// Pipeline bubble and activation memory, measured by the executor on the in-process runtime.
// Each block sleeps Ms ms in forward (first argument, default 32) and 2 Ms in backward (two blocks per rank and chunk), so stages have
// equal, known cost and 4 ranks do not compete for this machine's 2 cores: what is measured is the schedule.
//   bubble: 1 - compute / (ranks x span) of the traced step, against (p-1)/(m+p-1) (GPipe, 1F1B) and
//           (p-1)/(v m + p-1) (interleaved, v = 2); target: within 10% of it.
//   memory: peak bytes of stage inputs and outputs held for backward on pp rank 0, 1F1B against GPipe;
//           target: at most p/m of GPipe's.
int Ms = args.Length > 0 ? int.Parse(args[0]) : 32;
const int Width = 64, Batch = 64, Steps = 3;
torch.set_num_threads(1);
Console.WriteLine("| schedule | p | m | measured bubble | ideal | measured / ideal | schedule replayed with measured compute | peak activations rank 0 (KiB) |");
Console.WriteLine("|---|---|---|---|---|---|---|---|");
double worst = 0, worstMemory = 0;
foreach (int p in new[] { 2, 4 })
{
    foreach (int m in new[] { 4, 8, 16 })
    {
        var peak = new System.Collections.Generic.Dictionary<string, long>();
        foreach (var schedule in new[] { "gpipe", "1f1b", "interleaved" })
        {
            int v = schedule == "interleaved" ? 2 : 1;
            var results = Ranks.Run(new MeshShape(pp: p), context =>
            {
                // Two blocks per rank: one per chunk when interleaved (v = 2), so every stage costs the same per micro-batch overall.
                var model = new DelayNet(Width, depth: 2 * p, Ms);
                var executor = new PipelineExecutor(model, PipelineSchedule.Create(schedule, p, m, v), (y, t) => nn.functional.mse_loss(y, t));
                var x = torch.randn(Batch, Width);
                var y = torch.randn(Batch, 1);
                PipelineTrace? trace = null;
                for (int step = 0; step < Steps; step++)
                {
                    executor.Step(x, y);
                    trace = PipelineTrace.Gather(executor); // every rank takes part; rank 0 gets it
                }
                return (Trace: trace, executor.PeakActivationBytes);
            }, new RunOptions { VirtualPipelineStages = v });
            var trace = results[0].Trace!;
            var bubble = trace.BubbleFraction;
            // The same schedule on paper, each forward and backward taking exactly the time it took in this run and
            // communication nothing: the bubble the schedule has given these compute times (uneven stages, jitter).
            var measured = trace.Events.GroupBy(e => e.Rank).ToDictionary(g => g.Key, g => g.ToList());
            var replay = PipelineScheduleSimulator.Simulate(PipelineSchedule.Create(schedule, p, m, v),
                (a, rank, index) => measured[rank][index].End - measured[rank][index].Start).BubbleFraction;
            var ideal = PipelineTrace.IdealBubbleFraction(p, m, v);
            worst = Math.Max(worst, Math.Abs(bubble / ideal - 1));
            peak[schedule] = results[0].PeakActivationBytes;
            Console.WriteLine($"| {schedule} | {p} | {m} | {bubble:F3} | {ideal:F3} | {bubble / ideal:F3} | {replay:F3} | {results[0].PeakActivationBytes / 1024.0:F1} |");
        }
        double ratio = (double)peak["1f1b"] / peak["gpipe"];
        worstMemory = Math.Max(worstMemory, ratio / ((double)p / m));
        Console.WriteLine($"|  | {p} | {m} | 1F1B / GPipe peak activations {ratio:F3} | bound p/m = {(double)p / m:F3} | {ratio / ((double)p / m):F3} of the bound | | |");
    }
}
Console.WriteLine($"largest |measured / ideal bubble - 1|: {worst:P1} (target <= 10%); largest 1F1B/GPipe memory over p/m: {worstMemory:F3} (target <= 1)");
