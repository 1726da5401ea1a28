using TorchSharp;

namespace ModelParallel
{
    /// <summary>
    /// Arithmetic with a number whose native scalar is freed at once. TorchSharp converts a number to a native scalar that
    /// only the finalizer frees, and such small blocks, left in a freed tensor's memory, keep glibc from reusing it for the
    /// next step's tensor of that size (see <see cref="InPlaceAdam"/>). Per-step code of the runtime divides through these.
    /// </summary>
    internal static class TensorScalars
    {
        /// <summary><c>tensor.div_(divisor)</c>.</summary>
        public static torch.Tensor DivideInPlace(this torch.Tensor tensor, double divisor)
        {
            using var scalar = divisor.ToScalar();
            return tensor.div_(scalar);
        }
    }
}
