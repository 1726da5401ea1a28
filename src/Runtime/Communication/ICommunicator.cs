using TorchSharp;

namespace ModelParallel.Communication
{
    /// <summary>How a reduction combines the ranks' values.</summary>
    public enum ReduceOp
    {
        /// <summary>Elementwise sum.</summary>
        Sum,
        /// <summary>Elementwise mean over the ranks (floating-point tensors only).</summary>
        Average,
        /// <summary>Elementwise maximum.</summary>
        Max,
    }

    /// <summary>
    /// The collectives of one group of ranks. Every rank of the group must issue the same collectives
    /// in the same order with the same shapes and dtypes; in-process groups check this and fail with
    /// <see cref="CollectiveMismatchException"/> instead of hanging.
    /// </summary>
    public interface ICommunicator
    {
        /// <summary>This rank's index within the group.</summary>
        int Rank { get; }

        /// <summary>The number of ranks in the group.</summary>
        int Size { get; }

        /// <summary>Reduces <paramref name="tensor"/> over the group, in place on every rank.</summary>
        void AllReduce(torch.Tensor tensor, ReduceOp op = ReduceOp.Sum);

        /// <summary>
        /// Starts an in-place all-reduce of a contiguous tensor and returns at once where the transport allows
        /// (MPI_Iallreduce); <see cref="PendingCollective.Wait"/> completes it. Every rank must start the same
        /// reductions in the same order. The tensor must not be touched until the wait.
        /// </summary>
        PendingCollective StartAllReduce(torch.Tensor tensor, ReduceOp op = ReduceOp.Sum);

        /// <summary>Concatenates every rank's equally shaped <paramref name="tensor"/> along <paramref name="dim"/>, in rank order.</summary>
        torch.Tensor AllGather(torch.Tensor tensor, long dim);

        /// <summary>
        /// <see cref="AllGather"/> into a tensor the caller owns (its shape: <paramref name="tensor"/>'s with
        /// <paramref name="dim"/> times the group size). Along dimension 0 of contiguous tensors nothing is copied.
        /// </summary>
        void AllGatherInto(torch.Tensor tensor, torch.Tensor output, long dim);

        /// <summary>Reduces over the group and returns this rank's slice of the result along <paramref name="dim"/>.</summary>
        torch.Tensor ReduceScatter(torch.Tensor tensor, long dim, ReduceOp op = ReduceOp.Sum);

        /// <summary>
        /// <see cref="ReduceScatter"/> into a tensor the caller owns (its shape: <paramref name="tensor"/>'s with
        /// <paramref name="dim"/> divided by the group size). Along dimension 0 of contiguous tensors nothing is copied.
        /// </summary>
        void ReduceScatterInto(torch.Tensor tensor, torch.Tensor output, long dim, ReduceOp op = ReduceOp.Sum);

        /// <summary>Copies <paramref name="root"/>'s tensor into every rank's <paramref name="tensor"/>, in place.</summary>
        void Broadcast(torch.Tensor tensor, int root);

        /// <summary>Returns once every rank of the group has arrived.</summary>
        void Barrier();

        /// <summary>
        /// Sends a copy of <paramref name="tensor"/> to <paramref name="destination"/>. Buffered: returns without
        /// waiting for the receive. Messages of one (source, tag) arrive in the order they were sent.
        /// </summary>
        void Send(torch.Tensor tensor, int destination, int tag = 0);

        /// <summary>Receives a tensor sent by <paramref name="source"/> into <paramref name="into"/> (same shape and dtype).</summary>
        void Receive(torch.Tensor into, int source, int tag = 0);
    }
}
