using System;
using System.Runtime.InteropServices;
using TorchSharp;

namespace ModelParallel.Communication
{
    /// <summary>
    /// Autograd's record that a tensor was written in place. A collective that writes a tensor through its address (MPI
    /// on its storage, the in-process path's copies) leaves the tensor's version counter where it was, so a tensor that
    /// backward saved and a collective then overwrote would be used with its new values and no error; an in-place
    /// tensor operation (copy_, add_) moves the counter and backward fails loudly instead.
    /// </summary>
    internal static unsafe class VersionCounter
    {
        // libtorch's own functions, found through TorchSharp's library (its dependencies are searched too), by their
        // Itanium-ABI names: torch::autograd::impl::bump_version(at::Tensor const&) and at::native::is_inference(at::Tensor
        // const&). A TorchSharp handle is an at::Tensor*. Where they are not found (another ABI), the write is made instead.
        private static readonly delegate* unmanaged[Cdecl, SuppressGCTransition]<IntPtr, void> bumpVersion;
        private static readonly delegate* unmanaged[Cdecl, SuppressGCTransition]<IntPtr, byte> isInference;
        private static readonly delegate* unmanaged[Cdecl, SuppressGCTransition]<IntPtr, long> version;

        static VersionCounter()
        {
            var library = NativeLibrary.Load("LibTorchSharp", typeof(torch.Tensor).Assembly, null);
            if (NativeLibrary.TryGetExport(library, "_ZN5torch8autograd4impl12bump_versionERKN2at6TensorE", out var bump)
                && NativeLibrary.TryGetExport(library, "_ZN2at6native12is_inferenceERKNS_6TensorE", out var inference))
            {
                bumpVersion = (delegate* unmanaged[Cdecl, SuppressGCTransition]<IntPtr, void>)bump;
                isInference = (delegate* unmanaged[Cdecl, SuppressGCTransition]<IntPtr, byte>)inference;
                // at::TensorBase::_version() const; at::Tensor derives from at::TensorBase alone, so the handle is its this.
                if (NativeLibrary.TryGetExport(library, "_ZNK2at10TensorBase8_versionEv", out var read))
                    version = (delegate* unmanaged[Cdecl, SuppressGCTransition]<IntPtr, long>)read;
            }
        }

        /// <summary>Whether <see cref="TryRead"/> can read counters (libtorch's export was found).</summary>
        public static bool CanRead => version != null;

        /// <summary>
        /// The number of in-place writes autograd has recorded on <paramref name="tensor"/> (its views included); false for
        /// an inference tensor, which has no counter, or where libtorch's function was not found.
        /// </summary>
        public static bool TryRead(torch.Tensor tensor, out long value)
        {
            value = 0;
            if (version == null) return false;
            var handle = tensor.Handle;
            if (isInference(handle) != 0) return false;
            value = version(handle);
            GC.KeepAlive(tensor);
            return true;
        }

        /// <summary>Moves <paramref name="tensor"/>'s version counter as an in-place write would, without touching its data.</summary>
        public static void Bump(torch.Tensor tensor)
        {
            // The direct call costs nanoseconds where the write below costs 1-6 µs (two tensors, a dispatched operator),
            // as much as a whole 1K collective. An inference tensor has no counter, and libtorch would throw through this
            // frame outside inference mode: it takes the write, which fails as a .NET exception.
            if (bumpVersion != null)
            {
                var handle = tensor.Handle;
                if (isInference(handle) == 0)
                {
                    bumpVersion(handle);
                    GC.KeepAlive(tensor);
                    return;
                }
            }
            using var noGrad = torch.no_grad();
            // A view shares its base's counter; an empty one makes the write cost no pass over the data.
            using var flat = tensor.dim() == 0 ? tensor.view(1) : null;
            using var none = (flat ?? tensor).narrow(0, 0, 0);
            none.zero_();
        }
    }
}
