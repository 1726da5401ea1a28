using System;
using System.ComponentModel;
using ModelParallel.Communication;
using TorchSharp;

namespace ModelParallel
{
    /// <summary>
    /// The commit point of a training step. The generator routes every <c>optimizer.step()</c> call of a project that
    /// references ModelParallel through <see cref="Step"/>: inside a run on more than one rank, every rank first meets
    /// the others at a barrier on the world communicator, its last collective of the step, and only then changes its parameters. A rank that has failed
    /// never arrives, so the barrier fails on every other rank (the in-process group is aborted, or MPI_Abort ends the
    /// job) and no rank's parameters or optimizer state change after a failure anywhere in the step. A step whose
    /// data-parallel gradients still wait in their buckets (no <c>Synchronize</c> after backward) is refused.
    /// Outside a run, or on one rank, it is <c>optimizer.step()</c> itself.
    /// </summary>
    [EditorBrowsable(EditorBrowsableState.Never)]
    public static class StepCommit
    {
        /// <summary>Agrees with every rank that none has failed, then runs <paramref name="optimizer"/>'s step.</summary>
        /// <param name="optimizer">The optimizer whose step the user called.</param>
        /// <param name="closure">The closure the user passed to <c>step</c>, or null.</param>
        /// <param name="site">Where the user called it ("Program.cs(31,9)"); part of the barrier's signature.</param>
        public static torch.Tensor Step(torch.optim.Optimizer optimizer, Func<torch.Tensor>? closure, string site)
        {
            ArgumentNullException.ThrowIfNull(optimizer);
            if (RankContext.Current is { } context && context.Mesh.World > 1)
            {
                // A backward that failed on this rank is final: report it here rather than step on what it left.
                context.ThrowIfDeferredFailure();
                // Tapped gradients reach .grad only in Synchronize: a step before it would train on what is missing them.
                if (context.GradientTaps?.Unsynchronized() is { } waiting)
                    throw new InvalidOperationException(
                        $"optimizer.step() at {site}: the gradient of '{waiting}' (and of every Linear layer of the [ParallelModule] classes) is still in DataParallelGradients' buckets; call Synchronize() on the DataParallelGradients that Attach returned, after backward and before the step.");
                // Every collective of the step comes before the barrier, the replica check's too: a rank that has passed
                // the barrier only steps, so a failure elsewhere after it (a fast rank already in its next step) can no
                // longer stop this rank half-way, with some ranks stepped and others not.
                ReplicaCheck.OnFirstStep(optimizer, context, site);
                using (CollectiveSite.Enter($"optimizer.step() at {site}")) context.World.Barrier();
            }
            return optimizer.step(closure!);
        }

        /// <summary><c>optimizer.zero_grad()</c>, refused while data-parallel gradients wait in their buckets (see <see cref="ThrowIfHeld"/>).</summary>
        public static void ZeroGrad(torch.optim.Optimizer optimizer, string site)
        {
            ArgumentNullException.ThrowIfNull(optimizer);
            ThrowIfHeld("zero_grad()", site);
            optimizer.zero_grad();
        }

        /// <summary><c>module.zero_grad(set_to_none)</c>, refused while data-parallel gradients wait in their buckets (see <see cref="ThrowIfHeld"/>).</summary>
        public static void ZeroGrad(torch.nn.Module module, bool set_to_none, string site)
        {
            ArgumentNullException.ThrowIfNull(module);
            ThrowIfHeld("zero_grad()", site);
            module.zero_grad(set_to_none);
        }

        /// <summary>
        /// A backward's tapped gradients live in DataParallelGradients' buckets until Synchronize: zeroing .grad in between
        /// would not discard them, and the next Synchronize would average them in. On one device zero_grad discards them.
        /// </summary>
        private static void ThrowIfHeld(string call, string site)
        {
            if (RankContext.Current?.GradientTaps?.Unsynchronized() is { } waiting)
                throw new InvalidOperationException(
                    $"{call} at {site}: the gradient of '{waiting}' from the last backward is still in DataParallelGradients' buckets, where zeroing .grad cannot discard it; call Synchronize() before zero_grad(), or zero the gradients before the forward.");
        }
    }
}
