using System.Collections.Generic;
using TorchSharp;

namespace ModelParallel.Communication
{
    /// <summary>The collectives a <see cref="CountingCommunicator"/> tells apart.</summary>
    public enum CollectiveKind
    {
        /// <summary><see cref="ICommunicator.AllReduce"/>.</summary>
        AllReduce,
        /// <summary><see cref="ICommunicator.AllGatherInto"/>.</summary>
        AllGather,
        /// <summary><see cref="ICommunicator.ReduceScatterInto"/>.</summary>
        ReduceScatter,
        /// <summary><see cref="ICommunicator.Broadcast"/>.</summary>
        Broadcast,
        /// <summary><see cref="ICommunicator.Barrier"/>.</summary>
        Barrier,
        /// <summary><see cref="ICommunicator.Send"/>.</summary>
        Send,
        /// <summary><see cref="ICommunicator.Receive"/>.</summary>
        Receive,
    }

    /// <summary>
    /// Wraps a communicator and counts its collectives and the elements each moved on this rank, so tests
    /// and reports can prove how much communication a step needs. Belongs to one rank (not thread-safe).
    /// </summary>
    public sealed class CountingCommunicator(ICommunicator inner) : ICommunicator
    {
        private readonly Dictionary<CollectiveKind, (int Calls, long Elements)> counts = new();

        /// <summary>The wrapped communicator.</summary>
        public ICommunicator Inner { get; } = inner;

        /// <inheritdoc/>
        public int Rank => Inner.Rank;

        /// <inheritdoc/>
        public int Size => Inner.Size;

        /// <summary>How many times <paramref name="kind"/> was called since the last <see cref="Reset"/>.</summary>
        public int Calls(CollectiveKind kind) => counts.TryGetValue(kind, out var c) ? c.Calls : 0;

        /// <summary>The elements of this rank's input to <paramref name="kind"/> since the last <see cref="Reset"/>.</summary>
        public long Elements(CollectiveKind kind) => counts.TryGetValue(kind, out var c) ? c.Elements : 0;

        /// <summary>Total calls of every kind since the last <see cref="Reset"/>.</summary>
        public int TotalCalls
        {
            get
            {
                int total = 0;
                foreach (var c in counts.Values) total += c.Calls;
                return total;
            }
        }

        /// <summary>Forgets all counts.</summary>
        public void Reset() => counts.Clear();

        /// <inheritdoc/>
        public void AllReduce(torch.Tensor tensor, ReduceOp op = ReduceOp.Sum)
        {
            Count(CollectiveKind.AllReduce, tensor.numel());
            Inner.AllReduce(tensor, op);
        }

        /// <inheritdoc/>
        public PendingCollective StartAllReduce(torch.Tensor tensor, ReduceOp op = ReduceOp.Sum)
        {
            Count(CollectiveKind.AllReduce, tensor.numel());
            return Inner.StartAllReduce(tensor, op);
        }

        /// <inheritdoc/>
        public torch.Tensor AllGather(torch.Tensor tensor, long dim) => CollectiveArguments.AllGather(this, tensor, dim);

        /// <inheritdoc/>
        public torch.Tensor ReduceScatter(torch.Tensor tensor, long dim, ReduceOp op = ReduceOp.Sum) => CollectiveArguments.ReduceScatter(this, tensor, dim, op);

        /// <inheritdoc/>
        public void AllGatherInto(torch.Tensor tensor, torch.Tensor output, long dim)
        {
            Count(CollectiveKind.AllGather, tensor.numel());
            Inner.AllGatherInto(tensor, output, dim);
        }

        /// <inheritdoc/>
        public void ReduceScatterInto(torch.Tensor tensor, torch.Tensor output, long dim, ReduceOp op = ReduceOp.Sum)
        {
            Count(CollectiveKind.ReduceScatter, tensor.numel());
            Inner.ReduceScatterInto(tensor, output, dim, op);
        }

        /// <inheritdoc/>
        public void Broadcast(torch.Tensor tensor, int root)
        {
            Count(CollectiveKind.Broadcast, tensor.numel());
            Inner.Broadcast(tensor, root);
        }

        /// <inheritdoc/>
        public void Barrier()
        {
            Count(CollectiveKind.Barrier, 0);
            Inner.Barrier();
        }

        /// <inheritdoc/>
        public void Send(torch.Tensor tensor, int destination, int tag = 0)
        {
            Count(CollectiveKind.Send, tensor.numel());
            Inner.Send(tensor, destination, tag);
        }

        /// <inheritdoc/>
        public void Receive(torch.Tensor into, int source, int tag = 0)
        {
            Count(CollectiveKind.Receive, into.numel());
            Inner.Receive(into, source, tag);
        }

        private void Count(CollectiveKind kind, long elements)
        {
            var c = counts.TryGetValue(kind, out var existing) ? existing : default;
            counts[kind] = (c.Calls + 1, c.Elements + elements);
        }
    }
}
