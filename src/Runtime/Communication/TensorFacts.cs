using System;
using System.Runtime.InteropServices;
using TorchSharp;

namespace ModelParallel.Communication
{
    /// <summary>
    /// What a collective needs to know about a tensor (dtype, rank, sizes, contiguity, device, element count,
    /// storage address), read straight from TorchSharp's own native library, with the handle and dtype read
    /// once. Through TorchSharp's properties each fact costs 14-26 ns (and <c>Tensor.bytes</c>, the only way
    /// to the address, 84 ns); through these calls (blittable, no GC transition) 5-10 ns. A collective of 1K
    /// elements takes 0.6-1.5 µs in raw MPI and reads a dozen facts, so this decides how close to raw MPI the
    /// tensor path gets there (docs/benchmarks.md). The exports are those TorchSharp 0.107 itself binds; a
    /// TorchSharp without them is refused with the missing name.
    /// </summary>
    internal readonly unsafe struct TensorFacts
    {
        private static readonly delegate* unmanaged[Cdecl, SuppressGCTransition]<IntPtr, sbyte> type;
        private static readonly delegate* unmanaged[Cdecl, SuppressGCTransition]<IntPtr, long> dimensions;
        private static readonly delegate* unmanaged[Cdecl, SuppressGCTransition]<IntPtr, long, long> size;
        private static readonly delegate* unmanaged[Cdecl, SuppressGCTransition]<IntPtr, byte> contiguous;
        private static readonly delegate* unmanaged[Cdecl, SuppressGCTransition]<IntPtr, int> deviceType;
        private static readonly delegate* unmanaged[Cdecl, SuppressGCTransition]<IntPtr, long> elements;
        private static readonly delegate* unmanaged[Cdecl, SuppressGCTransition]<IntPtr, IntPtr> data;

        static TensorFacts()
        {
            // The library TorchSharp loaded, found the way TorchSharp finds it.
            var library = NativeLibrary.Load("LibTorchSharp", typeof(torch.Tensor).Assembly, null);
            IntPtr Export(string name) => NativeLibrary.TryGetExport(library, name, out var address) ? address :
                throw new NotSupportedException($"TorchSharp's native library has no {name}: ModelParallel reads tensor facts through the exports of TorchSharp 0.107.");
            type = (delegate* unmanaged[Cdecl, SuppressGCTransition]<IntPtr, sbyte>)Export("THSTensor_type");
            dimensions = (delegate* unmanaged[Cdecl, SuppressGCTransition]<IntPtr, long>)Export("THSTensor_ndimension");
            size = (delegate* unmanaged[Cdecl, SuppressGCTransition]<IntPtr, long, long>)Export("THSTensor_size");
            contiguous = (delegate* unmanaged[Cdecl, SuppressGCTransition]<IntPtr, byte>)Export("THSTensor_is_contiguous");
            deviceType = (delegate* unmanaged[Cdecl, SuppressGCTransition]<IntPtr, int>)Export("THSTensor_device_type");
            elements = (delegate* unmanaged[Cdecl, SuppressGCTransition]<IntPtr, long>)Export("THSTensor_numel");
            data = (delegate* unmanaged[Cdecl, SuppressGCTransition]<IntPtr, IntPtr>)Export("THSTensor_data");
        }

        private readonly IntPtr handle;

        /// <summary>Reads the handle (which throws for a disposed tensor) and the dtype.</summary>
        public TensorFacts(torch.Tensor tensor)
        {
            Tensor = tensor;
            handle = tensor.Handle;
            Type = (torch.ScalarType)type(handle);
            GC.KeepAlive(tensor);
        }

        public torch.Tensor Tensor { get; }

        public torch.ScalarType Type { get; }

        // Each read keeps the tensor alive until the native call has returned: a caller may hold these facts of a
        // temporary (x.contiguous()) and nothing else, and a garbage collection started by another rank's thread would
        // otherwise finalize it, freeing the native tensor while libtorch reads it.

        /// <summary>The rank, read on every use.</summary>
        public int Dimensions
        {
            get
            {
                var value = (int)dimensions(handle);
                GC.KeepAlive(Tensor);
                return value;
            }
        }

        /// <summary>The size of dimension <paramref name="dim"/>, which must be within the tensor's rank.</summary>
        public long Size(long dim)
        {
            var value = size(handle, dim);
            GC.KeepAlive(Tensor);
            return value;
        }

        /// <summary>libtorch returns a C++ bool; only its low byte is defined.</summary>
        public bool IsContiguous
        {
            get
            {
                var value = contiguous(handle) != 0;
                GC.KeepAlive(Tensor);
                return value;
            }
        }

        public bool OnCpu
        {
            get
            {
                var value = deviceType(handle) == (int)DeviceType.CPU;
                GC.KeepAlive(Tensor);
                return value;
            }
        }

        public long Elements
        {
            get
            {
                var value = elements(handle);
                GC.KeepAlive(Tensor);
                return value;
            }
        }

        /// <summary>
        /// The address of the first element of a contiguous CPU tensor. libtorch storage is not on the managed heap:
        /// it stays where it is for as long as the tensor lives, so the caller must keep <see cref="Tensor"/> alive
        /// (GC.KeepAlive after the last use of the address).
        /// </summary>
        public IntPtr Data
        {
            get
            {
                var value = data(handle);
                GC.KeepAlive(Tensor);
                return value;
            }
        }
    }
}
