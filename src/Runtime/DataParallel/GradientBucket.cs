using System.Collections.Generic;
using ModelParallel.Communication;
using TorchSharp;
using TorchSharp.Modules;

namespace ModelParallel.DataParallel
{
    /// <summary>Consecutive parameters of one dtype whose gradients are averaged over dp in one flat all-reduce.</summary>
    internal sealed class GradientBucket
    {
        public GradientBucket(IReadOnlyList<(int Index, Parameter Parameter)> members, torch.Device device)
        {
            Members = members;
            long total = 0;
            var offsets = new List<long>();
            foreach (var (_, p) in members)
            {
                offsets.Add(total);
                total += p.numel();
            }
            Offsets = offsets;
            Buffer = torch.zeros(total, members[0].Parameter.dtype, device);
        }

        public IReadOnlyList<(int Index, Parameter Parameter)> Members { get; }

        public IReadOnlyList<long> Offsets { get; }

        /// <summary>The flat gradients of the members, back to back.</summary>
        public torch.Tensor Buffer { get; }

        /// <summary>Members whose gradient has fully arrived during this backward.</summary>
        public int Ready { get; set; }

        /// <summary>The running all-reduce, once started.</summary>
        public PendingCollective? Pending { get; set; }

        public torch.Tensor Slice(int member) => Buffer.narrow(0, Offsets[member], Members[member].Parameter.numel());
    }
}
