using ModelParallel;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Consumer;

[ParallelModule]
public sealed partial class TwoLayerMlp : nn.Module<Tensor, Tensor>
{
    [ColumnParallel] private readonly Linear fc1;
    [RowParallel] private readonly Linear fc2;

    public TwoLayerMlp(long features, long hidden) : base(nameof(TwoLayerMlp))
    {
        fc1 = nn.Linear(features, hidden);
        fc2 = nn.Linear(hidden, features);
        RegisterComponents();
    }

    public override Tensor forward(Tensor x) => fc2.forward(nn.functional.relu(fc1.forward(x)));
}
