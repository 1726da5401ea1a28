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
        public static long Axis(TensorFacts tensor, long dim)
        {
            int dimensions = tensor.Dimensions;
            long axis = dim < 0 ? dim + dimensions : dim;
            if (axis < 0 || axis >= dimensions)
                throw new ArgumentOutOfRangeException(nameof(dim), $"Dimension {dim} is outside a tensor of shape {Shape(tensor.Tensor)}.");
            return axis;
        }

        public static void CheckDivisible(TensorFacts tensor, long axis, int size)
        {
            if (tensor.Size(axis) % size != 0)
                throw new ArgumentException($"Dimension {axis} of {Shape(tensor.Tensor)} is not divisible by the group size {size}.", nameof(tensor));
        }

        /// <summary>The output of a gather or scatter must have exactly the shape and dtype the collective produces.</summary>
        public static void CheckOutput(TensorFacts tensor, TensorFacts output, long axis, long outputSize, string operation)
        {
            // Dimension by dimension through TensorFacts: Tensor.shape allocates and costs about a microsecond, and
            // even TorchSharp's dim() and size(d) cost 15-25 ns each, which matters for collectives of 1K elements.
            int dimensions = tensor.Dimensions;
            bool fits = output.Type == tensor.Type && output.Dimensions == dimensions;
            for (int d = 0; fits && d < dimensions; d++)
                fits = output.Size(d) == (d == axis ? outputSize : tensor.Size(d));
            if (fits) return;
            var expected = (long[])tensor.Tensor.shape.Clone();
            expected[axis] = outputSize;
            throw new ArgumentException($"{operation}: the output is {Shape(output.Tensor)}, expected {tensor.Type.ToString().ToLowerInvariant()}[{string.Join(", ", expected)}].", nameof(output));
        }

        /// <summary>AllGather on a freshly allocated output, for every communicator.</summary>
        public static torch.Tensor AllGather(ICommunicator communicator, torch.Tensor tensor, long dim)
        {
            long axis = Axis(new TensorFacts(tensor), dim);
            var shape = (long[])tensor.shape.Clone();
            shape[axis] *= communicator.Size;
            var output = torch.empty(shape, tensor.dtype, tensor.device);
            communicator.AllGatherInto(tensor, output, axis);
            return output;
        }

        /// <summary>ReduceScatter on a freshly allocated output, for every communicator.</summary>
        public static torch.Tensor ReduceScatter(ICommunicator communicator, torch.Tensor tensor, long dim, ReduceOp op)
        {
            var facts = new TensorFacts(tensor);
            long axis = Axis(facts, dim);
            CheckDivisible(facts, axis, communicator.Size);
            var shape = (long[])tensor.shape.Clone();
            shape[axis] /= communicator.Size;
            var output = torch.empty(shape, tensor.dtype, tensor.device);
            communicator.ReduceScatterInto(tensor, output, axis, op);
            return output;
        }

        /// <summary>"float32[2, 3]".</summary>
        public static string Shape(torch.Tensor tensor) => Shape(new TensorFacts(tensor));

        /// <summary>
        /// "float32[2, 3]", from the facts: every collective describes its tensor so the ranks can compare, and through
        /// <c>tensor.shape</c> (an array from a native call) and the dtype's name made anew, that took 1-2 µs, as long as a
        /// whole 1K collective between threads.
        /// </summary>
        public static string Shape(TensorFacts facts)
        {
            var text = new System.Runtime.CompilerServices.DefaultInterpolatedStringHandler(2, 0, System.Globalization.CultureInfo.InvariantCulture);
            text.AppendLiteral(TypeName(facts.Type));
            text.AppendLiteral("[");
            for (int d = 0, dimensions = facts.Dimensions; d < dimensions; d++)
            {
                if (d > 0) text.AppendLiteral(", ");
                text.AppendFormatted(facts.Size(d));
            }
            text.AppendLiteral("]");
            return text.ToStringAndClear();
        }

        private static readonly System.Collections.Concurrent.ConcurrentDictionary<torch.ScalarType, string> TypeNames = new();

        private static string TypeName(torch.ScalarType type) => TypeNames.GetOrAdd(type, t => t.ToString().ToLowerInvariant());
    }
}
