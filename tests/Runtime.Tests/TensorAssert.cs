using System.Collections.Generic;
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

        /// <summary>The same names, and each tensor close to the reference's (see <see cref="Close"/>).</summary>
        public static void AllClose(IReadOnlyDictionary<string, torch.Tensor> expected, IReadOnlyDictionary<string, torch.Tensor> actual, string what)
        {
            Assert.Equal(expected.Keys.OrderBy(k => k), actual.Keys.OrderBy(k => k));
            foreach (var (name, tensor) in expected) Close(tensor, actual[name], $"{what} {name}");
        }

        /// <summary>A training run equal to the reference's: first output, first loss, first gradients, final parameters.</summary>
        public static void SameTraining(Models.TrainingRun.Outcome expected, Models.TrainingRun.Outcome actual, string where)
        {
            Close(expected.Output, actual.Output, $"{where}: forward output");
            Close(expected.Loss, actual.Loss, $"{where}: loss");
            AllClose(expected.Gradients, actual.Gradients, $"{where}: gradient of");
            AllClose(expected.Parameters, actual.Parameters, $"{where}: after the Adam steps,");
        }

        /// <summary>Every element equal to a hand-computed value.</summary>
        public static void Equal(double[] expected, torch.Tensor actual, string what)
        {
            var values = actual.detach().to(torch.float64).contiguous().data<double>().ToArray();
            Assert.True(expected.SequenceEqual(values), $"{what}: got [{string.Join(", ", values)}], expected [{string.Join(", ", expected)}]");
        }
    }
}
