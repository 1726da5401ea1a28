using System.Collections.Generic;
using System.Linq;
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
            elements = total;
            // After the gradients, one flag per member: 1 where this rank has a gradient for it. Reduced with them, it
            // tells every rank whether any replica had one (a parameter no replica used keeps no gradient, as on one device).
            Buffer = torch.zeros(total + members.Count, members[0].Parameter.dtype, device);
        }

        private readonly long elements;

        public IReadOnlyList<(int Index, Parameter Parameter)> Members { get; }

        public IReadOnlyList<long> Offsets { get; }

        /// <summary>The flat gradients of the members, back to back, then the members' flags (see the constructor).</summary>
        public torch.Tensor Buffer { get; }

        /// <summary>The running all-reduce, once started.</summary>
        public PendingCollective? Pending { get; set; }

        public torch.Tensor Slice(int member) => Buffer.narrow(0, Offsets[member], Members[member].Parameter.numel());

        /// <summary>Flags <paramref name="member"/> as having a gradient on this rank.</summary>
        public void MarkPresent(int member)
        {
            using var flag = Buffer.narrow(0, elements + member, 1);
            flag.fill_(1);
        }

        /// <summary>Clears every member's flag, for the next step.</summary>
        public void ClearFlags()
        {
            using var flags = Buffer.narrow(0, elements, Members.Count);
            flags.zero_();
        }

        /// <summary>After the reduction: for each member, whether any replica had a gradient for it.</summary>
        public bool[] PresentAnywhere()
        {
            using var flags = Buffer.narrow(0, elements, Members.Count).to(torch.float64);
            return flags.data<double>().ToArray().Select(f => f != 0).ToArray();
        }
    }
}
