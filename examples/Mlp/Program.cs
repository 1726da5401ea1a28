using System;
using System.CommandLine;
using System.Collections.Generic;
using System.Linq;
using ModelParallel;
using ModelParallel.DataParallel;
using ModelParallel.Examples;
using ModelParallel.Examples.Mlp;
using ModelParallel.Pipelining;
using TorchSharp;
using static TorchSharp.torch;

// Trains a residual MLP on a synthetic regression task on a dp x pp x tp mesh (ranks are threads, or processes
// under mpiexec), and compares its loss curve with the single-device run from the same logical weights.
// Each dp replica trains on its part of every batch; its gradients are averaged over dp. With --pp or
// --microbatches the step runs through the pipeline executor with the chosen --schedule; --trace writes the
// last step's timeline (Chrome trace JSON and SVG) and prints its bubble fraction.
var dp = ExampleCommandLine.Count("--dp", 1, "Data-parallel replicas; each trains on its part of every batch.");
var pp = ExampleCommandLine.Count("--pp", 1, "Pipeline stages the blocks are split into.");
var tp = ExampleCommandLine.Count("--tp", 2, "Tensor-parallel ranks each layer is split across.");
var microbatches = ExampleCommandLine.Count("--microbatches", 1, "Micro-batches per step (the pipeline executor runs the step when > 1).");
var schedule = new Option<string>("--schedule") { Description = "Pipeline schedule.", DefaultValueFactory = _ => "1f1b" };
schedule.AcceptOnlyFromAmong("gpipe", "1f1b", "interleaved");
var virtualStages = ExampleCommandLine.Count("--virtual", 2, "Model chunks per pipeline rank for the interleaved schedule.");
var trace = new Option<string?>("--trace") { Description = "Write the last step's timeline here (Chrome trace JSON, and an SVG beside it)." };
var steps = ExampleCommandLine.Count("--steps", 20, "Training steps.");
var depth = ExampleCommandLine.Count("--depth", 4, "Residual MLP blocks.");
var width = ExampleCommandLine.Size("--width", 64, "Width of the residual stream.");
var hidden = ExampleCommandLine.Size("--hidden", 256, "Hidden size of each block's MLP.");
var batch = ExampleCommandLine.Count("--batch", 32, "Samples per step, over all replicas.");
var seed = ExampleCommandLine.Count("--seed", 7, "Seed of the data and the single-device weights.", minimum: 0);
var command = new RootCommand("Trains a residual MLP on a dp x pp x tp mesh (threads, or processes under mpiexec) and compares its loss curve with one device's.")
{
    dp, pp, tp, microbatches, schedule, virtualStages, trace, steps, depth, width, hidden, batch, seed,
};
return ExampleCommandLine.Run(command, args, parsed => Example.Run(new ExampleOptions(parsed.GetValue(dp), parsed.GetValue(pp), parsed.GetValue(tp),
    parsed.GetValue(steps), parsed.GetValue(depth), parsed.GetValue(width), parsed.GetValue(hidden), parsed.GetValue(batch), parsed.GetValue(seed),
    parsed.GetValue(microbatches), parsed.GetValue(schedule)!, parsed.GetValue(virtualStages), parsed.GetValue(trace))));

/// <summary>The example's run, once its options are known to be sensible.</summary>
static class Example
{
    public static int Run(ExampleOptions options)
    {
        options.Check();
        torch.set_num_threads(1);
        var mesh = new MeshShape(dp: options.Dp, pp: options.Pp, tp: options.Tp);
        var runOptions = new RunOptions { VirtualPipelineStages = options.VirtualStages };
        // Every size the mesh must divide is checked first, on the meta device: a bad mesh costs nothing.
        Ranks.Validate(mesh, () => Task.NewModel(options), runOptions);

        // The single-device reference: the same class, built outside Ranks.Run, is the plain model.
        torch.manual_seed(options.Seed);
        var reference = Task.NewModel(options);
        var logical = reference.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.detach().clone());
        var (inputs, targets) = Task.Data(options);
        var referenceLosses = Task.Train(reference, inputs, targets, options, Replica.Whole);

        var losses = Ranks.Run(mesh, context =>
        {
            var model = Task.NewModel(options);
            LogicalState.Load(model, logical);
            // Layers another pipeline stage holds exist on the meta device only: no memory.
            var held = model.named_parameters().Where(p => p.parameter.device.type != DeviceType.META).ToList();
            var heldLogical = held.Sum(p => logical[p.name].numel());
            lock (options)
                Console.WriteLine($"rank {context.Rank} (dp {context.Coordinates.Dp}, pp {context.Coordinates.Pp}, tp {context.Coordinates.Tp}): {held.Sum(p => p.parameter.numel()):N0} parameters here, the local part of {heldLogical:N0} logical ({held.Count} of {logical.Count} tensors)");
            context.World.Barrier();
            var replica = new Replica(context.Coordinates.Dp, options.Dp, DataParallelGradients.Attach(model), context.DataParallel);
            return Task.Train(model, inputs, targets, options, replica, log: context.Rank == 0);
        }, runOptions);

        // In one process every rank's curve is here; under mpiexec each process holds only its own rank's.
        var mine = losses.First(curve => curve is not null);
        var difference = mine.Zip(referenceLosses, (a, b) => Math.Abs(a - b)).Max();
        if (losses[0] is not null)
            Console.WriteLine($"largest |loss(dp={options.Dp}, pp={options.Pp}, tp={options.Tp}) - loss(single device)| over {options.Steps} steps: {difference:E2}");
        return difference <= 1e-5 ? 0 : 1;
    }
}

/// <summary>Command-line options of the example.</summary>
sealed record ExampleOptions(int Dp, int Pp, int Tp, int Steps, int Depth, long Width, long Hidden, int Batch, int Seed,
    int Microbatches, string Schedule, int Virtual, string? Trace)
{
    /// <summary>Chunks per pipeline rank: --virtual for the interleaved schedule, else 1.</summary>
    public int VirtualStages => Schedule == "interleaved" ? Virtual : 1;

    /// <summary>Whether the step runs through the pipeline executor.</summary>
    public bool Pipelined => Pp > 1 || Microbatches > 1 || Trace is not null;

    /// <summary>The checks between options, before any rank starts; each failure is a <see cref="UsageException"/>.</summary>
    public void Check()
    {
        if (Batch % Dp != 0) throw new UsageException($"--batch {Batch} must be divisible by --dp {Dp}: each replica trains on an equal part.");
        if (Batch / Dp % Microbatches != 0) throw new UsageException($"--batch {Batch} / --dp {Dp} must be divisible by --microbatches {Microbatches}.");
        try
        {
            PipelineSchedule.Create(Schedule, Pp, Microbatches, VirtualStages);
        }
        catch (ArgumentException e)
        {
            throw new UsageException(e.Message);
        }
    }
}

/// <summary>Which part of every batch this rank trains on, and how its gradients and loss are averaged over dp.</summary>
sealed record Replica(int Index, int Count, DataParallelGradients? Gradients, ModelParallel.Communication.ICommunicator? DataParallel)
{
    public static Replica Whole { get; } = new(0, 1, null, null);
}

/// <summary>The synthetic regression task: y = sin(x A) + 0.1 x B, fixed by the seed.</summary>
static class Task
{
    public const long Features = 16, Outputs = 4;

    public static ResidualMlp NewModel(ExampleOptions o) => new(Features, o.Width, o.Hidden, Outputs, o.Depth);

    public static (Tensor Inputs, Tensor Targets) Data(ExampleOptions o)
    {
        using var generator = new torch.Generator((ulong)o.Seed);
        var a = torch.empty(Features, Outputs).normal_(0, 1, generator);
        var b = torch.empty(Features, Outputs).normal_(0, 1, generator);
        var x = torch.empty(o.Steps * o.Batch, Features).normal_(0, 1, generator);
        return (x, torch.sin(x.matmul(a)) + 0.1 * x.matmul(b));
    }

    public static List<double> Train(ResidualMlp model, Tensor inputs, Tensor targets, ExampleOptions o, Replica replica, bool log = false)
    {
        var optimizer = new InPlaceAdam(model.parameters(), lr: 1e-3);
        var pipeline = o.Pipelined && RankContext.Current is not null
            ? new PipelineExecutor(model, PipelineSchedule.Create(o.Schedule, o.Pp, o.Microbatches, o.VirtualStages), (p, t) => nn.functional.mse_loss(p, t))
            : null;
        var losses = new List<double>();
        int part = o.Batch / replica.Count;
        for (int step = 0; step < o.Steps; step++)
        {
            using var scope = torch.NewDisposeScope();
            var x = inputs.narrow(0, step * o.Batch + replica.Index * part, part);
            var y = targets.narrow(0, step * o.Batch + replica.Index * part, part);
            optimizer.zero_grad();
            Tensor whole;
            if (pipeline is not null)
                whole = torch.tensor(new[] { (float)pipeline.Step(x, y) });
            else
            {
                var loss = nn.functional.mse_loss(model.forward(x), y);
                loss.backward();
                whole = loss.detach().clone();
            }
            replica.Gradients?.Synchronize();
            optimizer.step();
            // The whole batch's loss is the mean of the replicas' (equal parts).
            if (replica.Count > 1) replica.DataParallel!.AllReduce(whole, ModelParallel.Communication.ReduceOp.Average);
            losses.Add(whole.item<float>());
            if (log) Console.WriteLine($"step {step + 1,3}  loss {losses[^1]:F6}");
        }
        if (pipeline is not null && o.Trace is not null && PipelineTrace.Gather(pipeline) is { } trace)
        {
            trace.Write(o.Trace);
            Console.WriteLine($"timeline of the last step: {o.Trace} and {System.IO.Path.ChangeExtension(o.Trace, ".svg")}; bubble {trace.BubbleFraction:P1} "
                + $"(ideal {PipelineTrace.IdealBubbleFraction(o.Pp, o.Microbatches, o.VirtualStages):P1} for {o.Schedule}, pp={o.Pp}, m={o.Microbatches})");
        }
        return losses;
    }
}
