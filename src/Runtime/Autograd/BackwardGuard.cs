using System;
using System.Collections.Generic;
using ModelParallel.Communication;
using TorchSharp;

namespace ModelParallel.Autograd
{
    /// <summary>
    /// Runs the body of a custom backward so that no exception reaches TorchSharp's native autograd engine,
    /// which cannot unwind managed exceptions and would end the process. A failure is recorded for the rank
    /// (see <see cref="RankContext.DeferFailure"/>) and the gradient returned is empty, which libtorch rejects:
    /// backward then fails in the caller's code instead of going on with zeros.
    /// </summary>
    internal static class BackwardGuard
    {
        private const string SiteKey = "collective site";

        /// <summary>Keeps the site of the forward call (see <see cref="CollectiveSite"/>), so backward's collectives name it too.</summary>
        public static void SaveSite(torch.autograd.AutogradContext ctx) => ctx.save_data(SiteKey, CollectiveSite.Current ?? "");

        /// <summary>As <see cref="Run(torch.Tensor, int, Func{torch.Tensor, torch.Tensor})"/>, the collectives signed "site (backward)".</summary>
        public static List<torch.Tensor> Run(torch.autograd.AutogradContext ctx, torch.Tensor gradOutput, int arguments, Func<torch.Tensor, torch.Tensor> body)
        {
            var site = (string)ctx.get_data(SiteKey);
            using var scope = CollectiveSite.Enter(site.Length == 0 ? "(backward)" : $"{site} (backward)");
            return Run(gradOutput, arguments, body);
        }

        public static List<torch.Tensor> Run(torch.Tensor gradOutput, int arguments, Func<torch.Tensor, torch.Tensor> body)
        {
            torch.Tensor gradient;
            try
            {
                gradient = body(gradOutput);
            }
            catch (Exception e) when (RankContext.Current is { } context)
            {
                context.DeferFailure(e);
                // Zeros would let the step go on as if nothing happened; a wrong shape makes libtorch stop backward.
                gradient = torch.empty(0, gradOutput.dtype, gradOutput.device);
            }
            // One entry per argument of apply; only the first (the tensor) has a gradient.
            var gradients = new List<torch.Tensor>(arguments) { gradient };
            for (int i = 1; i < arguments; i++) gradients.Add(null!);
            return gradients;
        }
    }
}
