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

        public static void CheckDivisible(torch.Tensor tensor, long axis, int size)
        {
            if (tensor.size((int)axis) % size != 0)
                throw new ArgumentException($"Dimension {axis} of {Shape(tensor)} is not divisible by the group size {size}.", nameof(tensor));
        }

        /// <summary>The output of a gather or scatter must have exactly the shape and dtype the collective produces.</summary>
        public static void CheckOutput(torch.Tensor tensor, torch.Tensor output, long axis, long outputSize, string operation)
        {
            // Dimension by dimension: Tensor.shape allocates and costs about a microsecond, which matters for small collectives.
            bool fits = output.dtype == tensor.dtype && output.dim() == tensor.dim();
            for (int d = 0; fits && d < tensor.dim(); d++)
                fits = output.size(d) == (d == axis ? outputSize : tensor.size(d));
            if (fits) return;
            var expected = (long[])tensor.shape.Clone();
            expected[axis] = outputSize;
            throw new ArgumentException($"{operation}: the output is {Shape(output)}, expected {tensor.dtype.ToString().ToLowerInvariant()}[{string.Join(", ", expected)}].", nameof(output));
        }

        /// <summary>AllGather on a freshly allocated output, for every communicator.</summary>
        public static torch.Tensor AllGather(ICommunicator communicator, torch.Tensor tensor, long dim)
        {
            long axis = Axis(tensor, dim);
            var shape = (long[])tensor.shape.Clone();
            shape[axis] *= communicator.Size;
            var output = torch.empty(shape, tensor.dtype, tensor.device);
            communicator.AllGatherInto(tensor, output, axis);
            return output;
        }

        /// <summary>ReduceScatter on a freshly allocated output, for every communicator.</summary>
        public static torch.Tensor ReduceScatter(ICommunicator communicator, torch.Tensor tensor, long dim, ReduceOp op)
        {
            long axis = Axis(tensor, dim);
            CheckDivisible(tensor, axis, communicator.Size);
            var shape = (long[])tensor.shape.Clone();
            shape[axis] /= communicator.Size;
            var output = torch.empty(shape, tensor.dtype, tensor.device);
            communicator.ReduceScatterInto(tensor, output, axis, op);
            return output;
        }

        /// <summary>"float32[2, 3]".</summary>
        public static string Shape(torch.Tensor tensor) => $"{tensor.dtype.ToString().ToLowerInvariant()}[{string.Join(", ", tensor.shape)}]";
    }
}
