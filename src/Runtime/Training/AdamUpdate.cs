using System;
using System.Collections.Generic;
using TorchSharp;
using static TorchSharp.torch;

namespace ModelParallel
{
    /// <summary>
    /// The per-parameter arithmetic of <see cref="InPlaceAdam"/> and <see cref="InPlaceAdamW"/>: TorchSharp's Adam and
    /// AdamW updates, operation for operation (so the results are bitwise the same), with every scalar disposed as soon as
    /// it is used and the denominator written into one reused scratch buffer instead of two new tensors a parameter.
    /// </summary>
    /// <remarks>
    /// TorchSharp's own step converts each double to a native <c>Scalar</c> that only the finalizer frees. Each of those
    /// small blocks lands in a freed tensor's memory, so glibc cannot hand that memory to the next step's tensor of the
    /// same size: the heap grows by about a model's size every step and every step faults its temporaries in afresh
    /// (the MLP stack of benchmarks/TensorParallelStep: 40 MB and 9,000 page faults a step) until a garbage collection.
    /// </remarks>
    internal sealed class AdamUpdate : IDisposable
    {
        private readonly Dictionary<(ScalarType, DeviceType, int), Tensor> scratch = new(); // Device compares by reference

        /// <summary>
        /// One parameter's step, counted in <paramref name="step"/> when the parameter has a gradient (a parameter without
        /// one is left alone, as TorchSharp leaves it). <paramref name="decoupledDecay"/> is AdamW's weight decay; otherwise
        /// weight decay is Adam's L2 term.
        /// </summary>
        public void Apply(Tensor param, Tensor exp_avg, Tensor exp_avg_sq, Tensor? max_exp_avg_sq, ref long step,
            double lr, double beta1, double beta2, double eps, double weight_decay, bool amsgrad, bool maximize, bool decoupledDecay)
        {
            using var gradient = param.grad;
            if (gradient is null) return;
            step += 1;
            using var negated = maximize ? gradient.neg() : null;
            var grad = negated ?? gradient;
            if (decoupledDecay)
            {
                using var keep = (1 - lr * weight_decay).ToScalar();
                param.mul_(keep);
            }
            using var decayed = !decoupledDecay && weight_decay != 0 ? AddScaled(grad, param, weight_decay) : null;
            grad = decayed ?? grad;

            double bias_correction1 = 1 - Math.Pow(beta1, step), bias_correction2 = 1 - Math.Pow(beta2, step);
            using (var b1 = beta1.ToScalar())
            using (var rest1 = (1 - beta1).ToScalar())
                exp_avg.mul_(b1).add_(grad, alpha: rest1);
            using (var b2 = beta2.ToScalar())
            using (var rest2 = (1 - beta2).ToScalar())
            using (var conj = grad.is_complex() ? grad.conj() : null)
                exp_avg_sq.mul_(b2).addcmul_(grad, conj ?? grad, value: rest2);

            var second = exp_avg_sq;
            if (amsgrad)
            {
                using var larger = torch.maximum(max_exp_avg_sq!, exp_avg_sq);
                max_exp_avg_sq!.copy_(larger);
                second = max_exp_avg_sq;
            }
            using var denom = Scratch(param);
            using (var root = Math.Sqrt(bias_correction2).ToScalar())
            using (var epsilon = eps.ToScalar())
            using (var one = 1.ToScalar()) // add_(Scalar) would make its own alpha of 1 and leave it to the finalizer
                denom.copy_(second).sqrt_().div_(root).add_(epsilon, one);
            using var step_size = (-(lr / bias_correction1)).ToScalar();
            param.addcdiv_(exp_avg, denom, value: step_size);
        }

        private static Tensor AddScaled(Tensor grad, Tensor param, double alpha)
        {
            using var scale = alpha.ToScalar();
            return grad.add(param, scale);
        }

        /// <summary>A view, shaped like <paramref name="param"/>, of the scratch buffer for its dtype and device (grown to fit).</summary>
        private Tensor Scratch(Tensor param)
        {
            var device = param.device;
            var key = (param.dtype, device.type, device.index);
            long size = param.numel();
            if (!scratch.TryGetValue(key, out var buffer) || buffer.numel() < size)
            {
                buffer?.Dispose();
                buffer = torch.empty(size, param.dtype, device).DetachFromDisposeScope();
                scratch[key] = buffer;
            }
            using var flat = buffer.narrow(0, 0, size);
            return flat.view(param.shape);
        }

        public void Dispose()
        {
            foreach (var buffer in scratch.Values) buffer.Dispose();
            scratch.Clear();
        }
    }
}
