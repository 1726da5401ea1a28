using System.Linq;
using TorchSharp;
using Xunit;

namespace ModelParallel.Tests
{
    /// <summary>Comparisons of tensors against an independent reference.</summary>
    internal static class TensorAssert
    {
        /// <summary>
        /// Same shape, and the largest elementwise difference at most <paramref name="relative"/> times the
        /// reference's largest magnitude.
        /// </summary>
        public static void Close(torch.Tensor expected, torch.Tensor actual, string what, double relative = 1e-5)
        {
            Assert.True(expected.shape.SequenceEqual(actual.shape),
                $"{what}: shape [{string.Join(", ", actual.shape)}], expected [{string.Join(", ", expected.shape)}]");
            var e = expected.detach().to(torch.float64);
            var a = actual.detach().to(torch.float64);
            double scale = e.abs().max().item<double>();
            double difference = (e - a).abs().max().item<double>();
            Assert.True(difference <= relative * scale,
                $"{what}: largest difference {difference:E3} exceeds {relative:E0} x reference magnitude {scale:E3}");
        }

        /// <summary>Every element equal to a hand-computed value.</summary>
        public static void Equal(double[] expected, torch.Tensor actual, string what)
        {
            var values = actual.detach().to(torch.float64).contiguous().data<double>().ToArray();
            Assert.True(expected.SequenceEqual(values), $"{what}: got [{string.Join(", ", values)}], expected [{string.Join(", ", expected)}]");
        }
    }
}
