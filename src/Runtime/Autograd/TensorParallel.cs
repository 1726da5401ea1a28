using System;
using ModelParallel.Communication;
using TorchSharp;

namespace ModelParallel.Autograd
{
    /// <summary>
    /// The differentiable collectives of the placement algebra, each with its conjugate in backward.
    /// Generated code calls these; a group of size 1 makes each an identity.
    /// </summary>
    public static class TensorParallel
    {
        /// <summary>R → R: identity forward, all-reduce backward (Megatron's f).</summary>
        public static torch.Tensor CopyToTensorParallel(torch.Tensor input, ICommunicator communicator) =>
            communicator.Size == 1 ? input : Autograd.CopyToTensorParallel.apply(input, communicator);

        /// <summary>P → R: all-reduce forward, identity backward (Megatron's g).</summary>
        public static torch.Tensor ReduceFromTensorParallel(torch.Tensor input, ICommunicator communicator) =>
            communicator.Size == 1 ? input : Autograd.ReduceFromTensorParallel.apply(input, communicator);

        /// <summary>S(dim) → R: all-gather forward, slice backward.</summary>
        public static torch.Tensor GatherFromTensorParallel(torch.Tensor input, ICommunicator communicator, long dim) =>
            communicator.Size == 1 ? input : Autograd.GatherFromTensorParallel.apply(input, communicator, dim);

        /// <summary>S(dim) → R before a ColumnParallel shard: all-gather forward, reduce-scatter backward (sums the ranks' input gradients).</summary>
        public static torch.Tensor GatherFromSequenceParallel(torch.Tensor input, ICommunicator communicator, long dim) =>
            communicator.Size == 1 ? input : Autograd.GatherFromSequenceParallel.apply(input, communicator, dim);

        /// <summary>P → S(dim): reduce-scatter forward, all-gather backward.</summary>
        public static torch.Tensor ReduceScatterToTensorParallel(torch.Tensor input, ICommunicator communicator, long dim) =>
            communicator.Size == 1 ? input : Autograd.ReduceScatterToTensorParallel.apply(input, communicator, dim);

        /// <summary>R → S(dim): local slice forward (free), all-gather backward.</summary>
        public static torch.Tensor ScatterToTensorParallel(torch.Tensor input, ICommunicator communicator, long dim)
        {
            if (communicator.Size == 1) return input;
            long axis = dim < 0 ? dim + input.dim() : dim;
            if (input.shape[axis] % communicator.Size != 0)
                throw new ArgumentException($"Cannot shard dimension {axis} of size {input.shape[axis]} over {communicator.Size} ranks.", nameof(input));
            return Autograd.ScatterToTensorParallel.apply(input, communicator, dim);
        }
    }
}
