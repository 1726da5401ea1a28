using System;
using System.Collections.Generic;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace ModelParallel
{
    /// <summary>
    /// <c>torch.optim.Adam</c> with a step that allocates no tensor memory after its first (amsgrad, maximize and L2 weight decay need a
    /// temporary each, as in TorchSharp): the same update, bitwise, and the same state (checkpoints, <c>state_dict</c>,
    /// learning-rate schedulers and parameter groups work as with TorchSharp's Adam). Every scalar is disposed when used
    /// and the denominator is written into one scratch buffer the size of the largest parameter. TorchSharp's own step
    /// leaves a native scalar per operation to the finalizer, which keeps glibc from reusing the step's freed tensors, so
    /// the heap grows and every step faults its memory in anew.
    /// </summary>
    public class InPlaceAdam : Adam
    {
        private readonly AdamUpdate update = new();

        /// <inheritdoc cref="Adam(IEnumerable{Parameter}, double, double, double, double, double, bool, bool)"/>
        public InPlaceAdam(IEnumerable<Parameter> parameters, double lr = 1e-3, double beta1 = 0.9, double beta2 = 0.999,
            double eps = 1e-8, double weight_decay = 0, bool amsgrad = false, bool maximize = false)
            : base(parameters, lr, beta1, beta2, eps, weight_decay, amsgrad, maximize)
        {
        }

        /// <inheritdoc cref="Adam(IEnumerable{Adam.ParamGroup}, double, double, double, double, double, bool, bool)"/>
        public InPlaceAdam(IEnumerable<ParamGroup> parameters, double lr = 1e-3, double beta1 = 0.9, double beta2 = 0.999,
            double eps = 1e-8, double weight_decay = 0, bool amsgrad = false, bool maximize = false)
            : base(parameters, lr, beta1, beta2, eps, weight_decay, amsgrad, maximize)
        {
        }

        /// <inheritdoc/>
        public override Tensor step(Func<Tensor>? closure = null) => _step<ParamGroup>(group =>
        {
            var o = (Options)group.Options;
            using var g = new AdamUpdate.Group(o.LearningRate!.Value, o.beta1!.Value, o.beta2!.Value, o.eps!.Value, o.weight_decay!.Value,
                o.amsgrad!.Value, o.maximize!.Value, decoupledDecay: false);
            foreach (var param in group.Parameters)
            {
                var state = (State)_state[param.Handle];
                update.Apply(g, param, state.exp_avg, state.exp_avg_sq, state.max_exp_avg_sq, ref state.step);
            }
        }, closure);

        /// <inheritdoc/>
        protected override void Dispose(bool disposing)
        {
            if (disposing) update.Dispose();
            base.Dispose(disposing);
        }
    }
}
