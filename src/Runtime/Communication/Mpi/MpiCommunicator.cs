using System;
using System.Linq;
using TorchSharp;
using static MPI.Unsafe;
using static ModelParallel.Communication.CollectiveArguments;

namespace ModelParallel.Communication.Mpi
{
    /// <summary>
    /// Collectives over an MPI communicator, on the tensor's own storage: a contiguous tensor is reduced
    /// in place (MPI_IN_PLACE) with no copy; a non-contiguous one is made contiguous once and the result
    /// written back. float32, float64 and int64 go to MPI as they are; float16 and bfloat16 are widened to
    /// float32 for the reduction and narrowed back (MPI has no 16-bit float sum).
    /// </summary>
    public sealed unsafe class MpiCommunicator : ICommunicator
    {
        private static readonly IntPtr InPlace = new(-1); // MPICH's MPI_IN_PLACE
        private readonly int handle;
        private readonly System.Collections.Generic.List<(int[] Request, torch.Tensor Copy)> pendingSends = new();

        internal MpiCommunicator(int handle, string name)
        {
            this.handle = handle;
            Name = name;
            int rank, size;
            MpiLibrary.Check(MPI_Comm_rank(handle, out rank), "MPI_Comm_rank");
            MpiLibrary.Check(MPI_Comm_size(handle, out size), "MPI_Comm_size");
            Rank = rank;
            Size = size;
        }

        /// <summary>For messages: "tp communicator".</summary>
        public string Name { get; }

        /// <inheritdoc/>
        public int Rank { get; }

        /// <inheritdoc/>
        public int Size { get; }

        /// <inheritdoc/>
        public void AllReduce(torch.Tensor tensor, ReduceOp op = ReduceOp.Sum)
        {
            CheckReduction(tensor, op);
            var work = Wire(tensor);
            var (type, count) = Describe(work);
            fixed (byte* data = work.bytes)
                MpiLibrary.Check(MPI_Allreduce(InPlace, (IntPtr)data, count, type, op == ReduceOp.Max ? MPI_MAX : MPI_SUM, handle), $"MPI_Allreduce on the {Name}");
            if (op != ReduceOp.Average && ReferenceEquals(work, tensor)) return; // the common case: in place, no tensor operation
            using var noGrad = torch.no_grad();
            if (op == ReduceOp.Average) work.div_(Size);
            if (!ReferenceEquals(work, tensor)) tensor.copy_(work);
        }

        /// <summary>
        /// MPI_Iallreduce in place on the tensor's storage; the wait is MPI_Wait. Tensors MPI cannot reduce as
        /// they are (non-contiguous, 16-bit floats) are reduced at once instead.
        /// </summary>
        public PendingCollective StartAllReduce(torch.Tensor tensor, ReduceOp op = ReduceOp.Sum)
        {
            CheckReduction(tensor, op);
            if (!tensor.is_contiguous() || tensor.dtype is torch.ScalarType.Float16 or torch.ScalarType.BFloat16)
            {
                AllReduce(tensor, op);
                return PendingCollective.Completed;
            }
            var (type, count) = Describe(tensor);
            var request = new int[1];
            fixed (byte* data = tensor.bytes)
            fixed (int* r = request)
                MpiLibrary.Check(MpiLibrary.Iallreduce(InPlace, (IntPtr)data, count, type, op == ReduceOp.Max ? MPI_MAX : MPI_SUM, handle, r), $"MPI_Iallreduce on the {Name}");
            // The storage is libtorch's, not the managed heap's: it stays put while the closure keeps the tensor alive.
            return new PendingCollective(() =>
            {
                fixed (int* r = request)
                    MpiLibrary.Check(MpiLibrary.Wait(r, MpiLibrary.StatusIgnore), $"MPI_Wait on the {Name}");
                if (op == ReduceOp.Average)
                {
                    using var noGrad = torch.no_grad();
                    tensor.div_(Size);
                }
            });
        }

        /// <inheritdoc/>
        public torch.Tensor AllGather(torch.Tensor tensor, long dim) => CollectiveArguments.AllGather(this, tensor, dim);

        /// <inheritdoc/>
        public torch.Tensor ReduceScatter(torch.Tensor tensor, long dim, ReduceOp op = ReduceOp.Sum) => CollectiveArguments.ReduceScatter(this, tensor, dim, op);

        /// <inheritdoc/>
        public void AllGatherInto(torch.Tensor tensor, torch.Tensor output, long dim)
        {
            long axis = Axis(tensor, dim);
            CheckOutput(tensor, output, axis, tensor.size((int)axis) * Size, "AllGather");
            if (axis == 0 && Direct(tensor) && Direct(output))
            {
                // Rank blocks along dimension 0 are contiguous in the output: MPI writes them in place.
                Gather(tensor, output);
                return;
            }
            using var noGrad = torch.no_grad();
            var send = Wire(tensor);
            var gathered = torch.empty(new[] { (long)Size }.Concat(send.shape).ToArray(), send.dtype, send.device);
            Gather(send, gathered);
            output.copy_(torch.cat(gathered.unbind(0), axis));
        }

        /// <inheritdoc/>
        public void ReduceScatterInto(torch.Tensor tensor, torch.Tensor output, long dim, ReduceOp op = ReduceOp.Sum)
        {
            CheckReduction(tensor, op);
            long axis = Axis(tensor, dim);
            CheckDivisible(tensor, axis, Size);
            CheckOutput(tensor, output, axis, tensor.size((int)axis) / Size, "ReduceScatter");
            if (axis == 0 && Direct(tensor) && Direct(output))
            {
                // Each rank's block along dimension 0 is contiguous in the input: MPI reads and writes in place.
                Scatter(tensor, output, op);
                return;
            }
            using var noGrad = torch.no_grad();
            // Swap `axis` to the front so each rank's block is contiguous; MPI reduces and scatters the blocks.
            var blocks = Wire(tensor.transpose(0, axis));
            var part = torch.empty(new[] { blocks.shape[0] / Size }.Concat(blocks.shape.Skip(1)).ToArray(), blocks.dtype, blocks.device);
            Scatter(blocks, part, op);
            output.copy_(part.transpose(0, axis));
        }

        private void Gather(torch.Tensor send, torch.Tensor receive)
        {
            var (type, count) = Describe(send);
            fixed (byte* source = send.bytes)
            fixed (byte* target = receive.bytes)
                MpiLibrary.Check(MPI_Allgather((IntPtr)source, count, type, (IntPtr)target, count, type, handle), $"MPI_Allgather on the {Name}");
        }

        private void Scatter(torch.Tensor send, torch.Tensor receive, ReduceOp op)
        {
            var (type, count) = Describe(receive);
            var counts = Enumerable.Repeat(count, Size).ToArray();
            fixed (byte* source = send.bytes)
            fixed (byte* target = receive.bytes)
                MpiLibrary.Check(MPI_Reduce_scatter((IntPtr)source, (IntPtr)target, counts, type, op == ReduceOp.Max ? MPI_MAX : MPI_SUM, handle), $"MPI_Reduce_scatter on the {Name}");
            if (op == ReduceOp.Average)
            {
                using var noGrad = torch.no_grad();
                receive.div_(Size);
            }
        }

        /// <summary>A tensor MPI can read or write where it lies: contiguous, of a dtype MPI reduces natively.</summary>
        private static bool Direct(torch.Tensor tensor) =>
            tensor.is_contiguous() && tensor.dtype is torch.ScalarType.Float32 or torch.ScalarType.Float64 or torch.ScalarType.Int64;

        /// <inheritdoc/>
        public void Broadcast(torch.Tensor tensor, int root)
        {
            if (root < 0 || root >= Size) throw new ArgumentOutOfRangeException(nameof(root), $"Broadcast root {root} is outside the {Name} of size {Size}.");
            using var noGrad = torch.no_grad();
            var work = tensor.is_contiguous() ? tensor : tensor.contiguous();
            fixed (byte* data = work.bytes)
                MpiLibrary.Check(MPI_Bcast((IntPtr)data, checked((int)work.bytes.Length), MPI_BYTE, root, handle), $"MPI_Bcast on the {Name}");
            if (!ReferenceEquals(work, tensor)) tensor.copy_(work);
        }

        /// <inheritdoc/>
        public void Barrier()
        {
            CompleteSends(wait: true);
            MpiLibrary.Check(MPI_Barrier(handle), $"MPI_Barrier on the {Name}");
        }

        /// <summary>
        /// Buffered, like the in-process communicator: the message is copied and handed to MPI_Isend, and Send
        /// returns at once. A pipeline stage can therefore send its activation and then receive a gradient from
        /// the same neighbour, which is sending too, without both blocking in MPI_Send. Copies are released as
        /// their sends complete (checked on every later send and receive, and waited for by Barrier).
        /// </summary>
        public void Send(torch.Tensor tensor, int destination, int tag = 0)
        {
            CompleteSends(wait: false);
            using var noGrad = torch.no_grad();
            // Owned here until the send completes, whatever dispose scope the caller is in.
            var copy = tensor.detach().contiguous().clone().DetachFromDisposeScope();
            var request = new int[1];
            fixed (byte* data = copy.bytes)
            fixed (int* r = request)
                MpiLibrary.Check(MpiLibrary.Isend((IntPtr)data, checked((int)copy.bytes.Length), MPI_BYTE, destination, tag, handle, r), $"MPI_Isend to rank {destination} on the {Name}");
            // libtorch storage does not move: the copy stays valid until its request completes.
            pendingSends.Add((request, copy));
        }

        private void CompleteSends(bool wait)
        {
            for (int i = pendingSends.Count - 1; i >= 0; i--)
            {
                var (request, copy) = pendingSends[i];
                int done = 0;
                fixed (int* r = request)
                {
                    if (wait) MpiLibrary.Check(MpiLibrary.Wait(r, MpiLibrary.StatusIgnore), $"MPI_Wait (send) on the {Name}");
                    else MpiLibrary.Check(MpiLibrary.Test(r, &done, MpiLibrary.StatusIgnore), $"MPI_Test (send) on the {Name}");
                }
                if (!wait && done == 0) continue;
                copy.Dispose();
                pendingSends.RemoveAt(i);
            }
        }

        /// <inheritdoc/>
        public void Receive(torch.Tensor into, int source, int tag = 0)
        {
            CompleteSends(wait: false);
            using var noGrad = torch.no_grad();
            var work = into.is_contiguous() ? into : into.contiguous();
            fixed (byte* data = work.bytes)
            {
                MPI.Unsafe.MPI_Status status;
                MpiLibrary.Check(MPI_Recv((IntPtr)data, checked((int)work.bytes.Length), MPI_BYTE, source, tag, handle, out status), $"MPI_Recv from rank {source} on the {Name}");
            }
            if (!ReferenceEquals(work, into)) into.copy_(work);
        }

        /// <summary>A contiguous tensor of a dtype MPI can reduce: the tensor itself when it already is one.</summary>
        private static torch.Tensor Wire(torch.Tensor tensor)
        {
            var work = tensor.dtype is torch.ScalarType.Float16 or torch.ScalarType.BFloat16 ? tensor.to(torch.float32) : tensor;
            return work.is_contiguous() ? work : work.contiguous();
        }

        private static (int Type, int Count) Describe(torch.Tensor tensor)
        {
            int type = tensor.dtype switch
            {
                torch.ScalarType.Float32 => MPI_FLOAT,
                torch.ScalarType.Float64 => MPI_DOUBLE,
                torch.ScalarType.Int64 => MPI_LONG_LONG,
                _ => throw new NotSupportedException($"MPI collectives support float32, float64, float16, bfloat16 and int64 tensors; got {tensor.dtype}."),
            };
            if (tensor.numel() > int.MaxValue)
                throw new NotSupportedException($"A tensor of {tensor.numel()} elements exceeds MPI's int count; split it into buckets.");
            return (type, (int)tensor.numel());
        }
    }
}
