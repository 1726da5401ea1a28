using System;
using ModelParallel.Communication;
using TorchSharp;
using TorchSharp.Modules;

namespace ModelParallel.DataParallel
{
    /// <summary>
    /// Where a parameter's <c>.grad</c> stood when the parameter was first tapped in a step: whether it existed, its
    /// storage and its version counter. Tapped uses hand their gradient to the bucket and none to <c>.grad</c>, so a
    /// <c>.grad</c> written since the mark holds the gradient of uses the taps did not see (the weight read directly,
    /// a tied weight, a use after the bucket had started): those must be averaged too.
    /// </summary>
    internal readonly struct GradientMark
    {
        private readonly bool hadGradient;
        private readonly IntPtr data;
        private readonly long version;

        private GradientMark(bool hadGradient, IntPtr data, long version) => (this.hadGradient, this.data, this.version) = (hadGradient, data, version);

        /// <summary>Whether marks can be read here: without libtorch's version counter a write in place cannot be seen.</summary>
        public static bool Supported => VersionCounter.CanRead;

        /// <summary>The state of <paramref name="parameter"/>'s gradient now.</summary>
        public static GradientMark Take(Parameter parameter)
        {
            using var grad = parameter.grad;
            if (grad is null) return new GradientMark(false, IntPtr.Zero, 0);
            return new GradientMark(true, new TensorFacts(grad).Data, Version(grad));
        }

        /// <summary>Whether <paramref name="grad"/> (the parameter's gradient now, or null) was written since this mark.</summary>
        public bool WrittenSince(torch.Tensor? grad) =>
            grad is not null && (!hadGradient || new TensorFacts(grad).Data != data || version < 0 || Version(grad) != version);

        // A gradient made in inference mode has no counter (-1): it counts as written, which costs an extra reduction, never a lost one.
        private static long Version(torch.Tensor grad) => VersionCounter.TryRead(grad, out long value) ? value : -1;
    }
}
