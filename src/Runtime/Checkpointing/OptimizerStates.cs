using System;
using System.Collections.Generic;
using System.Linq;
using TorchSharp;
using TorchSharp.Modules;

namespace ModelParallel.Checkpointing
{
    /// <summary>
    /// The per-parameter state of the optimizers a checkpoint supports: Adam and AdamW (exp_avg, exp_avg_sq, the step
    /// count, and max_exp_avg_sq with amsgrad). Any other optimizer is refused by name rather than saved without its state.
    /// </summary>
    internal static class OptimizerStates
    {
        /// <summary>A parameter's state tensors by suffix ("exp_avg", ...), and a setter for its step count.</summary>
        internal sealed record State(Dictionary<string, torch.Tensor> Tensors, Func<long> GetStep, Action<long> SetStep);

        public static string Name(torch.optim.Optimizer optimizer) => optimizer switch
        {
            AdamW => "AdamW",
            Adam => "Adam",
            _ => throw new NotSupportedException(
                $"Checkpoint saves the state of Adam and AdamW; {optimizer.GetType().Name} is not supported (its state would be lost on resume)."),
        };

        /// <summary>The state of every parameter the optimizer holds, by parameter handle.</summary>
        public static Dictionary<IntPtr, State> Of(torch.optim.Optimizer optimizer)
        {
            Name(optimizer);
            var helper = (OptimizerHelper)optimizer;
            var parameters = helper.ParamGroups.Cast<ParamGroup>().SelectMany(g => g.Parameters).ToList();
            var states = helper.state_dict().State;
            if (parameters.Count != states.Count) throw new InvalidOperationException($"{optimizer.GetType().Name} lists {parameters.Count} parameters but {states.Count} states.");
            var result = new Dictionary<IntPtr, State>();
            for (int i = 0; i < parameters.Count; i++) result[parameters[i].Handle] = Wrap(states[i]);
            return result;
        }

        private static State Wrap(OptimizerState state) => state switch
        {
            AdamW.State w => new State(Tensors(w.exp_avg, w.exp_avg_sq, w.max_exp_avg_sq), () => w.step, s => w.step = s),
            Adam.State a => new State(Tensors(a.exp_avg, a.exp_avg_sq, a.max_exp_avg_sq), () => a.step, s => a.step = s),
            _ => throw new NotSupportedException($"Unexpected optimizer state {state.GetType().FullName}."),
        };

        private static Dictionary<string, torch.Tensor> Tensors(torch.Tensor average, torch.Tensor squares, torch.Tensor? maximum)
        {
            var tensors = new Dictionary<string, torch.Tensor> { ["exp_avg"] = average, ["exp_avg_sq"] = squares };
            if (maximum is not null && !maximum.IsInvalid) tensors["max_exp_avg_sq"] = maximum;
            return tensors;
        }
    }
}
