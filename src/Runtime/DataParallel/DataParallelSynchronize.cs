using System.Collections.Generic;
using ModelParallel.Communication;
using TorchSharp;
using TorchSharp.Modules;

namespace ModelParallel.DataParallel
{
    public sealed partial class DataParallelGradients
    {
        /// <summary>
        /// Reduces the buckets still waiting, waits for all, and writes the dp-averaged gradients back. Every rank issues
        /// the same collectives in the same order whatever its forward did: the buckets in bucket order, then one small
        /// all-reduce of flags, then one all-reduce per gradient that reached <c>.grad</c> outside the taps after its bucket
        /// had started on some rank.
        /// </summary>
        public void Synchronize()
        {
            if (communicator.Size == 1) return;
            using var noGrad = torch.no_grad();
            StartedDuringBackward = next;
            var written = WrittenOutside();
            // Per parameter: [i] written outside its taps on this rank, [n + i] that part still to be reduced on its own.
            int n = expected.Length;
            var flags = new float[2 * n];
            for (; next < buckets.Count; next++)
            {
                var bucket = buckets[next];
                for (int m = 0; m < bucket.Members.Count; m++)
                {
                    var (index, parameter) = bucket.Members[m];
                    using var slice = bucket.Slice(m);
                    if (expected[index] == 0)
                    {
                        // Not tapped this step: autograd's gradient is the whole of it.
                        using var grad = parameter.grad;
                        if (grad is null) slice.zero_();
                        else
                        {
                            slice.copy_(grad.reshape(-1));
                            bucket.MarkPresent(m);
                        }
                        continue;
                    }
                    // Tapped, but no gradient came back (its output did not reach the loss): the slice still holds the last
                    // step's average, since a first arrival overwrites rather than adds. This rank adds nothing.
                    if (arrived[index] == 0) slice.zero_();
                    if (written[index] is not { } gradient) continue;
                    slice.add_(gradient.reshape(-1)); // the bucket has not started here: the outside part goes in with it
                    bucket.MarkPresent(m);
                    gradient.Dispose();
                    written[index] = null;
                    flags[index] = 1;
                }
                Start(bucket);
            }
            for (int i = 0; i < n; i++)
                if (written[i] is not null) flags[i] = flags[n + i] = 1; // its bucket started during backward
            var agreed = Agree(flags);
            foreach (var bucket in buckets) bucket.Pending!.Wait();
            var late = new HashSet<int>();
            for (int index = 0; index < n; index++)
            {
                if (agreed[index]) untapped[index] = true; // on every rank alike: the flags were reduced
                if (!agreed[n + index]) continue;
                late.Add(index);
                ReduceLate(index, written[index]);
            }
            WriteBack(late);
            System.Array.Clear(expected);
            System.Array.Clear(arrived);
            next = 0;
        }

        /// <summary>
        /// For each tapped parameter, this rank's <c>.grad</c> where it was written outside the taps since the parameter's
        /// first tap of the step, else null. Where .grad cannot be watched nothing is tapped, and none is.
        /// </summary>
        private torch.Tensor?[] WrittenOutside()
        {
            var written = new torch.Tensor?[expected.Length];
            if (!tapping) return written;
            for (int i = 0; i < expected.Length; i++)
            {
                if (expected[i] == 0) continue;
                var grad = parameters[i].grad;
                if (marks[i].WrittenSince(grad)) written[i] = grad;
                else grad?.Dispose();
            }
            return written;
        }

        /// <summary>The flags of every replica, or-ed (one small all-reduce, after every bucket has started).</summary>
        private bool[] Agree(float[] flags)
        {
            var any = new bool[flags.Length];
            if (!tapping) return any; // nothing is tapped, so nothing reaches .grad outside a tap: there is nothing to agree on
            using var reduced = torch.tensor(flags);
            using (CollectiveSite.Enter("dp gradients used outside their layers"))
                communicator.AllReduce(reduced, ReduceOp.Max);
            var values = reduced.data<float>().ToArray();
            for (int i = 0; i < values.Length; i++) any[i] = values[i] != 0;
            return any;
        }

        /// <summary>
        /// A gradient that reached <c>.grad</c> outside its taps after its bucket had started on some rank: this rank's such
        /// part (<paramref name="gradient"/>, or zeros where it has none), averaged on its own, plus the bucket's average.
        /// </summary>
        private void ReduceLate(int index, torch.Tensor? gradient)
        {
            var parameter = parameters[index];
            var part = gradient ?? torch.zeros_like(parameter);
            using (CollectiveSite.Enter($"dp gradient of {names[index]}, used outside its layer"))
                communicator.AllReduce(part, ReduceOp.Average);
            var (b, m) = slots[index];
            using (var slice = buckets[b].Slice(m))
            using (var average = slice.view(parameter.shape)) part.add_(average);
            if (gradient is null) parameter.grad = part;
            else gradient.Dispose(); // it is .grad, now holding the sum
        }

        /// <summary>Replaces each gradient with its bucket's average; one no replica had keeps none, as on one device.</summary>
        private void WriteBack(HashSet<int> late)
        {
            foreach (var bucket in buckets)
            {
                var present = bucket.PresentAnywhere();
                for (int m = 0; m < bucket.Members.Count; m++)
                {
                    var (index, parameter) = bucket.Members[m];
                    if (late.Contains(index) || !present[m]) continue;
                    using var slice = bucket.Slice(m);
                    using var average = slice.view(parameter.shape);
                    using var grad = parameter.grad;
                    if (grad is not null) grad.copy_(average);
                    else parameter.grad = average.clone();
                }
                bucket.ClearFlags(); // the gradients need no zeroing: each is overwritten by its first arrival, or zeroed above
                bucket.Pending = null;
            }
        }
    }
}
