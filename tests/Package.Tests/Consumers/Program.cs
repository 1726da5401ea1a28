using Consumer;
using ModelParallel;
using TorchSharp;

// Trains the model 3 steps on one device (the class built outside Ranks.Run is the plain model), then on a tp mesh
// from the same logical weights; prints each rank's local shapes and both loss curves.
int tp = int.Parse(args[0]);
torch.manual_seed(1);
var reference = new TwoLayerMlp(8, 32);
var logical = reference.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.detach().clone());
var x = torch.randn(16, 8);
var y = torch.randn(16, 8);

float[] Train(TwoLayerMlp model)
{
    var optimizer = new InPlaceAdam(model.parameters(), lr: 1e-2); // the package's Adam; its step is the intercepted commit point
    var losses = new float[3];
    for (int step = 0; step < losses.Length; step++)
    {
        optimizer.zero_grad();
        var loss = torch.nn.functional.mse_loss(model.forward(x), y);
        loss.backward();
        optimizer.step();
        losses[step] = loss.item<float>();
    }
    return losses;
}

var expected = Train(reference);
var curves = Ranks.Run(new MeshShape(tp: tp), rank =>
{
    var model = new TwoLayerMlp(8, 32);
    LogicalState.Load(model, logical);
    foreach (var (name, parameter) in model.named_parameters())
        Console.WriteLine($"rank {rank.Rank}: {name} [{string.Join(", ", parameter.shape)}]");
    return Train(model);
});
foreach (var curve in curves.Where(c => c is not null))
    Console.WriteLine($"losses {string.Join(" ", curve)} one device {string.Join(" ", expected)}");
