using System;
using System.Collections.Generic;
using TorchSharp;
using static TorchSharp.torch;

namespace ModelParallel
{
    /// <summary>
    /// The per-parameter arithmetic of <see cref="InPlaceAdam"/> and <see cref="InPlaceAdamW"/>: TorchSharp's Adam and
    /// AdamW updates, operation for operation (so the results are bitwise the same), with every scalar disposed within the
    /// step (a group's once a step, a parameter's after its update) and the denominator written into one reused scratch
    /// buffer instead of two new tensors a parameter.
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
        /// A parameter group's hyperparameters and the scalars they need, made once a group a step and disposed after it.
        /// </summary>
        public sealed class Group : IDisposable
        {
            public readonly double LearningRate, Beta1, Beta2;
            public readonly bool Amsgrad, Maximize;
            public readonly Scalar B1, Rest1, B2, Rest2, Epsilon, One;
            public readonly Scalar? Keep, L2; // AdamW's factor 1 - lr·decay; Adam's decay, when it has one

            /// <summary><paramref name="decoupledDecay"/> is AdamW's weight decay; otherwise weight decay is Adam's L2 term.</summary>
            public Group(double lr, double beta1, double beta2, double eps, double weight_decay, bool amsgrad, bool maximize, bool decoupledDecay)
            {
                (LearningRate, Beta1, Beta2, Amsgrad, Maximize) = (lr, beta1, beta2, amsgrad, maximize);
                (B1, Rest1, B2, Rest2, Epsilon) = (beta1.ToScalar(), (1 - beta1).ToScalar(), beta2.ToScalar(), (1 - beta2).ToScalar(), eps.ToScalar());
                One = 1.ToScalar(); // add_(Scalar) would make its own alpha of 1 and leave it to the finalizer
                Keep = decoupledDecay ? (1 - lr * weight_decay).ToScalar() : null;
                L2 = !decoupledDecay && weight_decay != 0 ? weight_decay.ToScalar() : null;
            }

            public void Dispose()
            {
                foreach (var scalar in new[] { B1, Rest1, B2, Rest2, Epsilon, One, Keep, L2 }) scalar?.Dispose();
            }
        }

        /// <summary>
        /// One parameter's step, counted in <paramref name="step"/> when the parameter has a gradient (a parameter without
        /// one is left alone, as TorchSharp leaves it).
        /// </summary>
        public void Apply(Group g, Tensor param, Tensor exp_avg, Tensor exp_avg_sq, Tensor? max_exp_avg_sq, ref long step)
        {
            using var gradient = param.grad;
            if (gradient is null) return;
            step += 1;
            using var negated = g.Maximize ? gradient.neg() : null;
            var grad = negated ?? gradient;
            if (g.Keep is { } keep) param.mul_(keep);
            using var decayed = g.L2 is { } l2 ? grad.add(param, l2) : null;
            grad = decayed ?? grad;

            double bias_correction1 = 1 - Math.Pow(g.Beta1, step), bias_correction2 = 1 - Math.Pow(g.Beta2, step);
            exp_avg.mul_(g.B1).add_(grad, alpha: g.Rest1);
            using (var conj = grad.is_complex() ? grad.conj() : null)
                exp_avg_sq.mul_(g.B2).addcmul_(grad, conj ?? grad, value: g.Rest2);

            var second = exp_avg_sq;
            if (g.Amsgrad)
            {
                using var larger = torch.maximum(max_exp_avg_sq!, exp_avg_sq);
                max_exp_avg_sq!.copy_(larger);
                second = max_exp_avg_sq;
            }
            using var denom = Scratch(param);
            using (var root = Math.Sqrt(bias_correction2).ToScalar())
                denom.copy_(second).sqrt_().div_(root).add_(g.Epsilon, g.One);
            using var step_size = (-(g.LearningRate / bias_correction1)).ToScalar();
            param.addcdiv_(exp_avg, denom, value: step_size);
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
