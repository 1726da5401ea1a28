using TorchSharp;

namespace ModelParallel.Communication
{
    /// <summary>
    /// Autograd's record that a tensor was written in place. A collective that writes a tensor through its address (MPI
    /// on its storage, the in-process path's copies) leaves the tensor's version counter where it was, so a tensor that
    /// backward saved and a collective then overwrote would be used with its new values and no error; an in-place
    /// tensor operation (copy_, add_) moves the counter and backward fails loudly instead.
    /// </summary>
    internal static class VersionCounter
    {
        /// <summary>Moves <paramref name="tensor"/>'s version counter as an in-place write would, without touching its data.</summary>
        public static void Bump(torch.Tensor tensor)
        {
            using var noGrad = torch.no_grad();
            // A view shares its base's counter; an empty one makes the write cost no pass over the data.
            using var flat = tensor.dim() == 0 ? tensor.view(1) : null;
            using var none = (flat ?? tensor).narrow(0, 0, 0);
            none.zero_();
        }
    }
}
