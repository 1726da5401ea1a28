using System;
using System.CommandLine;
using System.Collections.Generic;
using System.Linq;
using ModelParallel;
using ModelParallel.Examples;
using ModelParallel.Examples.Transformer;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

// Trains a stack of transformer blocks (pre-norm attention with a fused q/k/v projection, then an MLP),
// partitioned Megatron-style by the attributes in TransformerBlock.cs alone, on a tp mesh (threads, or processes
// under mpiexec). The task: predict the running mean of a random sequence (causal attention can). The loss curve is
// compared with the single-device run of the same class from the same logical weights.
var tpOption = ExampleCommandLine.Count("--tp", 2, "Tensor-parallel ranks each block is split across (heads and hidden size must divide).");
var stepsOption = ExampleCommandLine.Count("--steps", 20, "Training steps.");
var depthOption = ExampleCommandLine.Count("--depth", 2, "Transformer blocks.");
var widthOption = ExampleCommandLine.Size("--width", 64, "Model width.");
var headsOption = ExampleCommandLine.Size("--heads", 8, "Attention heads (width must divide by it).");
var command = new RootCommand("Trains a stack of transformer blocks partitioned Megatron-style on a tp mesh (threads, or processes under mpiexec) and compares its loss curve with one device's.")
{
    tpOption, stepsOption, depthOption, widthOption, headsOption,
};
int tp = 2, steps = 20, depth = 2;
long width = 64, heads = 8, hidden = 256, batch = 8, time = 16;
return ExampleCommandLine.Run(command, args, parsed =>
{
    (tp, steps, depth, width, heads) = (parsed.GetValue(tpOption), parsed.GetValue(stepsOption), parsed.GetValue(depthOption), parsed.GetValue(widthOption), parsed.GetValue(headsOption));
    if (width % heads != 0) throw new UsageException($"--width {width} must be divisible by --heads {heads}.");
    // The head count reaches the model only as a view's size at run time, so it is checked here, before any work.
    if (heads % tp != 0) throw new UsageException($"--heads {heads} must be divisible by --tp {tp}: each rank runs whole heads.");
    return Main();
});

int Main()
{
    torch.set_num_threads(1);
    var mesh = new MeshShape(tp: tp);
    // Every size the mesh must divide is checked first, on the meta device.
    Ranks.Validate(mesh, NewModel);

    torch.manual_seed(3);
    var reference = NewModel();
    var logical = reference.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.detach().clone());
    using var generator = new torch.Generator(5);
    var inputs = torch.empty(steps, batch, time, width).normal_(0, 1, generator);
    var targets = inputs.cumsum(2) / torch.arange(1, time + 1, dtype: torch.float32).view(1, 1, time, 1);
    var expected = Train(reference, inputs, targets, log: false);

    var curves = Ranks.Run(mesh, context =>
    {
        var model = NewModel();
        LogicalState.Load(model, logical);
        if (context.Rank == 0)
            Console.WriteLine($"rank 0 holds {model.parameters().Sum(p => p.numel()):N0} of {logical.Values.Sum(t => t.numel()):N0} parameters (heads per rank: {heads / tp})");
        return Train(model, inputs, targets, log: context.Rank == 0);
    });
    var mine = curves.First(c => c is not null);
    var difference = mine.Zip(expected, (a, b) => Math.Abs(a - b)).Max();
    if (curves[0] is not null) Console.WriteLine($"largest |loss(tp={tp}) - loss(single device)| over {steps} steps: {difference:E2}");
    return difference <= 1e-5 ? 0 : 1;
}

Stack NewModel() => new(depth, width, heads, hidden);

List<double> Train(Stack model, Tensor inputs, Tensor targets, bool log)
{
    var optimizer = new InPlaceAdam(model.parameters(), lr: 1e-3);
    var losses = new List<double>();
    for (int step = 0; step < steps; step++)
    {
        using var scope = torch.NewDisposeScope();
        optimizer.zero_grad();
        var loss = nn.functional.mse_loss(model.forward(inputs[step]), targets[step]);
        loss.backward();
        optimizer.step();
        losses.Add(loss.item<float>());
        if (log) Console.WriteLine($"step {step + 1,3}  loss {losses[^1]:F6}");
    }
    return losses;
}

/// <summary>A stack of the example's blocks.</summary>
sealed class Stack : nn.Module<Tensor, Tensor>
{
    private readonly ModuleList<TransformerBlock> blocks = new();

    public Stack(int depth, long width, long heads, long hidden) : base(nameof(Stack))
    {
        for (int i = 0; i < depth; i++) blocks.Add(new TransformerBlock(width, heads, hidden));
        RegisterComponents();
    }

    public override Tensor forward(Tensor x)
    {
        foreach (var block in blocks) x = block.forward(x);
        return x;
    }
}
