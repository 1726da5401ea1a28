using System;
using System.Collections.Generic;
using TorchSharp;
using static TorchSharp.torch;

namespace ModelParallel.Tests.Models
{
    /// <summary>
    /// A few Adam steps of mean-squared-error regression, recording what the equivalence checks compare:
    /// the first step's output, loss and gradients (after <c>afterBackward</c>, where data parallelism averages them), and the final state. Shared by the in-process and MPI tests.
    /// </summary>
    public static class TrainingRun
    {
        public sealed record Outcome(Tensor Output, Tensor Loss, Dictionary<string, Tensor> Gradients, Dictionary<string, Tensor> Parameters);

        public static Outcome Train<TModel>(TModel model, List<(Tensor X, Tensor Y)> batches,
            Func<TModel, Dictionary<string, Tensor>> gradients, Func<TModel, Dictionary<string, Tensor>> state, Action? afterBackward = null)
            where TModel : nn.Module<Tensor, Tensor>
        {
            var optimizer = torch.optim.Adam(model.parameters(), lr: 0.01);
            Tensor? output = null, firstLoss = null;
            Dictionary<string, Tensor>? firstGradients = null;
            foreach (var (x, y) in batches)
            {
                optimizer.zero_grad();
#pragma warning disable MP0021 // given whole-output models only (the references and the partitioned stacks)
                var prediction = model.forward(x);
#pragma warning restore MP0021
                var loss = nn.functional.mse_loss(prediction, y);
                loss.backward();
                afterBackward?.Invoke();
                if (firstGradients is null)
                {
                    output = prediction.detach().clone();
                    firstLoss = loss.detach().clone();
                    firstGradients = gradients(model);
                }
                optimizer.step();
            }
            return new Outcome(output!, firstLoss!, firstGradients!, state(model));
        }
    }
}
