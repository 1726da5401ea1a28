using System;
using TorchSharp;

namespace ModelParallel.Communication
{
    /// <summary>Argument checks and descriptions shared by every communicator, so all report bad input alike.</summary>
    internal static class CollectiveArguments
    {
        public static void CheckReduction(torch.Tensor tensor, ReduceOp op)
        {
            if (op == ReduceOp.Average && !tensor.is_floating_point())
                throw new ArgumentException($"ReduceOp.Average needs a floating-point tensor; got {tensor.dtype}.", nameof(op));
        }

        /// <summary><paramref name="dim"/> as a non-negative dimension of <paramref name="tensor"/>.</summary>
        public static long Axis(torch.Tensor tensor, long dim)
        {
            long axis = dim < 0 ? dim + tensor.dim() : dim;
            if (axis < 0 || axis >= tensor.dim())
                throw new ArgumentOutOfRangeException(nameof(dim), $"Dimension {dim} is outside a tensor of shape {Shape(tensor)}.");
            return axis;
        }

        /// <summary>"float32[2, 3]".</summary>
        public static string Shape(torch.Tensor tensor) => $"{tensor.dtype.ToString().ToLowerInvariant()}[{string.Join(", ", tensor.shape)}]";
    }
}
