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
    /// float32 for the reduction and narrowed back (MPI has no 16-bit float sum). Unless checking is switched off
    /// (<see cref="RunOptions.CheckCollectives"/>), the ranks first agree on every collective's signature
    /// (<see cref="MpiAgreement"/>), so a mismatch fails with both signatures instead of MPI pairing different calls.
    /// </summary>
    public sealed unsafe class MpiCommunicator : ICommunicator
    {
        private static readonly IntPtr InPlaceMarker = new(-1); // MPICH's MPI_IN_PLACE
        private readonly int handle;
        private readonly System.Collections.Generic.List<(int[] Request, torch.Tensor Copy)> pendingSends = new();
        private int[] blockCounts = Array.Empty<int>(); // MPI_Reduce_scatter's counts, reused while the block size stays

        private readonly MpiAgreement? agreement;
        private readonly MpiDepartureNotices? notices;

        private readonly FlightRecorder recorder;
        private readonly TimeSpan timeout;

        internal MpiCommunicator(int handle, string name, int worldRank, bool check, FlightRecorder recorder, TimeSpan timeout)
        {
            this.recorder = recorder;
            this.timeout = timeout;
            this.handle = handle;
            Name = name;
            int rank, size;
            MpiLibrary.Check(MPI_Comm_rank(handle, out rank), "MPI_Comm_rank");
            MpiLibrary.Check(MPI_Comm_size(handle, out size), "MPI_Comm_size");
            Rank = rank;
            Size = size;
            agreement = check ? new MpiAgreement(handle, name, worldRank, size, recorder, timeout) : null;
            notices = check ? new MpiDepartureNotices(handle, name, rank, size) : null;
        }

        /// <summary>
        /// Posts this rank's departure on the communicator (its body has ended): a notice to each peer for its receives,
        /// then the departure all-gather for its collectives. Null when collectives are not checked.
        /// </summary>
        internal MpiAgreement.PendingDeparture? PostDeparture()
        {
            notices?.Post();
            return agreement?.PostDeparture();
        }

        /// <summary>After every rank has departed: the peers' notices are taken and this rank's sends completed.</summary>
        internal void FinishDeparture()
        {
            notices?.Finish();
            CompleteSends(wait: true);
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
            var facts = new TensorFacts(tensor);
            agreement?.Agree(CollectiveKind.AllReduce, facts, (long)op);
            if (Storage(facts, out var buffer))
            {
                Allreduce(buffer, op); // the common case: in place, no tensor operation
                if (op == ReduceOp.Average) Divide(tensor);
                VersionCounter.Bump(tensor); // MPI wrote it behind autograd's back
                return;
            }
            AllReduceThroughWire(tensor, op);
        }

        // The paths through a wire copy are methods of their own, so that the in-place paths above carry no
        // exception-handling region (the no_grad scope) and stay small for the JIT.
        private void AllReduceThroughWire(torch.Tensor tensor, ReduceOp op)
        {
            using var noGrad = torch.no_grad();
            var work = Wire(tensor);
            Allreduce(WireStorage(work), op);
            if (op == ReduceOp.Average) work.DivideInPlace(Size);
            tensor.copy_(work);
        }

        private void Allreduce(Buffer buffer, ReduceOp op) =>
            MpiLibrary.Check(MPI_Allreduce(InPlaceMarker, buffer.Address, buffer.Count, buffer.Type, Operation(op), handle), "MPI_Allreduce", Name);

        private static int Operation(ReduceOp op) => op == ReduceOp.Max ? MPI_MAX : MPI_SUM;

        private void Divide(torch.Tensor tensor)
        {
            using var noGrad = torch.no_grad();
            tensor.DivideInPlace(Size);
        }

        /// <summary>
        /// MPI_Iallreduce in place on the tensor's storage; the wait is MPI_Wait. Tensors MPI cannot reduce as
        /// they are (non-contiguous, 16-bit floats) are reduced at once instead.
        /// </summary>
        public PendingCollective StartAllReduce(torch.Tensor tensor, ReduceOp op = ReduceOp.Sum)
        {
            CheckReduction(tensor, op);
            var facts = new TensorFacts(tensor);
            if (!Storage(facts, out var buffer))
            {
                AllReduce(tensor, op);
                return PendingCollective.Completed;
            }
            agreement?.Agree(CollectiveKind.AllReduce, facts, (long)op);
            var request = new int[1];
            fixed (int* r = request)
                MpiLibrary.Check(MpiLibrary.Iallreduce(InPlaceMarker, buffer.Address, buffer.Count, buffer.Type, Operation(op), handle, r), "MPI_Iallreduce", Name);
            // The storage is libtorch's, not the managed heap's: it stays put while the closure keeps the tensor alive.
            return new PendingCollective(() =>
            {
                fixed (int* r = request)
                    MpiLibrary.Check(MpiLibrary.Wait(r, MpiLibrary.StatusIgnore), "MPI_Wait", Name);
                if (op == ReduceOp.Average) Divide(tensor);
                VersionCounter.Bump(tensor);
            });
        }

        /// <inheritdoc/>
        public torch.Tensor AllGather(torch.Tensor tensor, long dim) => CollectiveArguments.AllGather(this, tensor, dim);

        /// <inheritdoc/>
        public torch.Tensor ReduceScatter(torch.Tensor tensor, long dim, ReduceOp op = ReduceOp.Sum) => CollectiveArguments.ReduceScatter(this, tensor, dim, op);

        /// <inheritdoc/>
        public void AllGatherInto(torch.Tensor tensor, torch.Tensor output, long dim)
        {
            TensorFacts input = new(tensor), result = new(output);
            long axis = Axis(input, dim);
            CheckOutput(input, result, axis, input.Size(axis) * Size, "AllGather");
            agreement?.Agree(CollectiveKind.AllGather, input, axis);
            if (axis == 0 && Storage(input, out var source) && Storage(result, out var target))
            {
                // Rank blocks along dimension 0 are contiguous in the output: MPI writes them in place.
                Gather(source, target);
                VersionCounter.Bump(output);
                GC.KeepAlive(tensor); // MPI read its storage by address: the caller's tensor may be a temporary
                return;
            }
            AllGatherThroughWire(tensor, output, axis);
        }

        private void AllGatherThroughWire(torch.Tensor tensor, torch.Tensor output, long axis)
        {
            using var noGrad = torch.no_grad();
            var send = Wire(tensor);
            using var gathered = torch.empty(new[] { (long)Size }.Concat(send.shape).ToArray(), send.dtype, send.device);
            Gather(WireStorage(send), WireStorage(gathered));
            var blocks = gathered.unbind(0);
            using var joined = torch.cat(blocks, axis); // held across the copy, as in ReduceScatterThroughWire
            output.copy_(joined);
            foreach (var block in blocks) block.Dispose();
            GC.KeepAlive(send);
        }

        /// <inheritdoc/>
        public void ReduceScatterInto(torch.Tensor tensor, torch.Tensor output, long dim, ReduceOp op = ReduceOp.Sum)
        {
            CheckReduction(tensor, op);
            TensorFacts input = new(tensor), result = new(output);
            long axis = Axis(input, dim);
            CheckDivisible(input, axis, Size);
            CheckOutput(input, result, axis, input.Size(axis) / Size, "ReduceScatter");
            agreement?.Agree(CollectiveKind.ReduceScatter, input, (long)op | (axis << 8));
            if (axis == 0 && Storage(input, out var source) && Storage(result, out var target))
            {
                // Each rank's block along dimension 0 is contiguous in the input: MPI reads and writes in place.
                Scatter(source, target, op);
                if (op == ReduceOp.Average) Divide(output);
                VersionCounter.Bump(output);
                GC.KeepAlive(tensor); // MPI read its storage by address: the caller's tensor may be a temporary
                return;
            }
            ReduceScatterThroughWire(tensor, output, axis, op);
        }

        private void ReduceScatterThroughWire(torch.Tensor tensor, torch.Tensor output, long axis, ReduceOp op)
        {
            using var noGrad = torch.no_grad();
            // Swap `axis` to the front so each rank's block is contiguous; MPI reduces and scatters the blocks.
            // Temporaries are held in variables across the native calls that read them: a call does not keep its
            // arguments alive, and a GC during it could finalize one and free what it reads.
            using var swapped = tensor.transpose(0, axis);
            var blocks = Wire(swapped);
            using var part = torch.empty(new[] { blocks.shape[0] / Size }.Concat(blocks.shape.Skip(1)).ToArray(), blocks.dtype, blocks.device);
            Scatter(WireStorage(blocks), WireStorage(part), op);
            if (op == ReduceOp.Average) part.DivideInPlace(Size);
            using var back = part.transpose(0, axis);
            output.copy_(back);
            GC.KeepAlive(blocks);
        }

        private void Gather(Buffer send, Buffer receive) =>
            MpiLibrary.Check(MPI_Allgather(send.Address, send.Count, send.Type, receive.Address, send.Count, send.Type, handle), "MPI_Allgather", Name);

        private void Scatter(Buffer send, Buffer receive, ReduceOp op)
        {
            if (blockCounts.Length != Size || blockCounts[0] != receive.Count)
            {
                blockCounts = new int[Size];
                Array.Fill(blockCounts, receive.Count);
            }
            MpiLibrary.Check(MPI_Reduce_scatter(send.Address, receive.Address, blockCounts, receive.Type, Operation(op), handle), "MPI_Reduce_scatter", Name);
        }

        /// <inheritdoc/>
        public void Broadcast(torch.Tensor tensor, int root)
        {
            if (root < 0 || root >= Size) throw new ArgumentOutOfRangeException(nameof(root), $"Broadcast root {root} is outside the {Name} of size {Size}.");
            agreement?.Agree(CollectiveKind.Broadcast, new TensorFacts(tensor), root);
            using var noGrad = torch.no_grad();
            var work = tensor.is_contiguous() ? tensor : tensor.contiguous();
            fixed (byte* data = work.bytes)
                MpiLibrary.Check(MPI_Bcast((IntPtr)data, checked((int)work.bytes.Length), MPI_BYTE, root, handle), "MPI_Bcast", Name);
            if (Rank == root) return; // the root's tensor is read, not written
            if (!ReferenceEquals(work, tensor)) tensor.copy_(work);
            else VersionCounter.Bump(tensor);
        }

        /// <inheritdoc/>
        public void Barrier()
        {
            CompleteSends(wait: true);
            // The agreement is an all-gather, which no rank leaves before all have entered: it is the barrier.
            if (agreement is not null) agreement.Agree(CollectiveKind.Barrier, null, 0);
            else MpiLibrary.Check(MPI_Barrier(handle), "MPI_Barrier", Name);
        }

        /// <summary>
        /// Buffered, like the in-process communicator: the message is copied and handed to MPI_Isend, and Send
        /// returns at once. A pipeline stage can therefore send its activation and then receive a gradient from
        /// the same neighbour, which is sending too, without both blocking in MPI_Send. Copies are released as
        /// their sends complete (checked on every later send and receive, and waited for by Barrier).
        /// </summary>
        public void Send(torch.Tensor tensor, int destination, int tag = 0)
        {
            CheckTag(tag);
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
            notices?.Sent(destination);
        }

        private static void CheckTag(int tag)
        {
            if (tag < 0 || tag >= MpiDepartureNotices.Tag)
                throw new ArgumentOutOfRangeException(nameof(tag), tag, $"Message tags run from 0 to {MpiDepartureNotices.Tag - 1}; {MpiDepartureNotices.Tag} is reserved for departure notices.");
        }

        private void CompleteSends(bool wait)
        {
            for (int i = pendingSends.Count - 1; i >= 0; i--)
            {
                var (request, copy) = pendingSends[i];
                int done = 0;
                fixed (int* r = request)
                {
                    if (wait) MpiLibrary.Check(MpiLibrary.Wait(r, MpiLibrary.StatusIgnore), "MPI_Wait (send)", Name);
                    else MpiLibrary.Check(MpiLibrary.Test(r, &done, MpiLibrary.StatusIgnore), "MPI_Test (send)", Name);
                }
                if (!wait && done == 0) continue;
                copy.Dispose();
                pendingSends.RemoveAt(i);
            }
        }

        /// <inheritdoc/>
        public void Receive(torch.Tensor into, int source, int tag = 0)
        {
            CheckTag(tag);
            CompleteSends(wait: false);
            using var noGrad = torch.no_grad();
            var work = into.is_contiguous() ? into : into.contiguous();
            int expected = checked((int)work.bytes.Length), received = 0, code;
            int* status = stackalloc int[MpiLibrary.StatusInts];
            int* request = stackalloc int[1];
            long recording = recorder.Begin(Name, CollectiveKind.Receive, tag, $"Receive (tag {tag}) of {Shape(into)} from rank {source}");
            fixed (byte* data = work.bytes)
            {
                MpiLibrary.Check(MpiLibrary.Irecv((IntPtr)data, expected, MPI_BYTE, source, tag, handle, request), $"MPI_Irecv from rank {source}", Name);
                var awaited = $"a receive (tag {tag}) from rank {source}";
                code = MpiAgreement.WaitOrTimeOut(request, Name, recorder, timeout, awaited, status,
                    notices is null ? null : () => notices.Unreachable(source, awaited));
            }
            recorder.End(recording);
            notices?.Received(source);
            MpiLibrary.GetCount(status, MPI_BYTE, &received);
            // A longer message is MPI's truncation error, a shorter one no error at all: both would leave garbage.
            if (code != MPI_SUCCESS || received != expected)
                throw new CollectiveMismatchException(
                    $"Rank {Rank} of the {Name} receives {Shape(into)} ({expected} bytes) from rank {source} (tag {tag}), but {(code != MPI_SUCCESS ? $"the message is longer (MPI error code {code})" : $"the message has {received} bytes")}: sender and receiver disagree on the shape or dtype.");
            if (!ReferenceEquals(work, into)) into.copy_(work);
            else VersionCounter.Bump(into);
        }

        /// <summary>A contiguous tensor's storage as MPI sees it: address, element count, MPI datatype.</summary>
        private readonly record struct Buffer(IntPtr Address, int Count, int Type);

        /// <summary>
        /// The tensor's own storage, for MPI to read and write where it lies; false when MPI cannot use it as it
        /// is (not contiguous, or 16-bit floats, which MPI cannot sum). Four native reads after the dtype
        /// read by <see cref="TensorFacts"/>'s constructor, no allocation.
        /// </summary>
        private static bool Storage(TensorFacts tensor, out Buffer buffer)
        {
            buffer = default;
            int type;
            switch (tensor.Type)
            {
                case torch.ScalarType.Float32: type = MPI_FLOAT; break;
                case torch.ScalarType.Float64: type = MPI_DOUBLE; break;
                case torch.ScalarType.Int64: type = MPI_LONG_LONG; break;
                case torch.ScalarType.Float16 or torch.ScalarType.BFloat16: return false; // widened by Wire
                default: throw new NotSupportedException($"MPI collectives support float32, float64, float16, bfloat16 and int64 tensors; got {tensor.Type}.");
            }
            if (!tensor.OnCpu)
                throw new NotSupportedException($"MPI collectives need CPU tensors; got one on {tensor.Tensor.device}.");
            if (!tensor.IsContiguous) return false;
            long count = tensor.Elements;
            if (count > int.MaxValue)
                throw new NotSupportedException($"A tensor of {count} elements exceeds MPI's int count; split it into buckets.");
            buffer = new Buffer(tensor.Data, (int)count, type);
            return true;
        }

        /// <summary>The storage of a tensor made by <see cref="Wire"/>, which MPI can always use.</summary>
        private static Buffer WireStorage(torch.Tensor work) =>
            Storage(new TensorFacts(work), out var buffer) ? buffer : throw new InvalidOperationException("A wire tensor is contiguous and of a dtype MPI reduces.");

        /// <summary>A contiguous tensor of a dtype MPI can reduce: the tensor itself when it already is one.</summary>
        private static torch.Tensor Wire(torch.Tensor tensor)
        {
            var work = tensor.dtype is torch.ScalarType.Float16 or torch.ScalarType.BFloat16 ? tensor.to(torch.float32) : tensor;
            return work.is_contiguous() ? work : work.contiguous();
        }
    }
}
