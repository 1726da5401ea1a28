using System;
using System.Linq;
using TorchSharp;
using static ModelParallel.Communication.CollectiveArguments;

namespace ModelParallel.Communication
{
    /// <summary>
    /// Collectives between ranks that are threads of one process. Every collective first compares the
    /// ranks' signatures (operation, dtype, shape, sequence number, call site) and throws
    /// <see cref="CollectiveMismatchException"/> on a difference, so a wrong program fails instead of hanging.
    /// Reductions sum in rank order, so every rank gets bitwise the same result.
    /// </summary>
    public sealed partial class InProcessCommunicator : ICommunicator
    {
        private readonly InProcessGroup group;
        private readonly torch.Tensor?[] posted = new torch.Tensor?[1]; // this rank's input handle in the group's slot
        private readonly FlightRecorder recorder;
        private long sequence, recording;

        internal InProcessCommunicator(InProcessGroup group, int rank)
        {
            this.group = group;
            Rank = rank;
            recorder = group.Recorder(rank);
        }

        /// <inheritdoc/>
        public int Rank { get; }

        /// <inheritdoc/>
        public int Size => group.Size;

        /// <inheritdoc/>
        public void AllReduce(torch.Tensor tensor, ReduceOp op = ReduceOp.Sum)
        {
            CheckReduction(tensor, op);
            if (TrySmallAllReduce(tensor, op)) return;
            using var noGrad = torch.no_grad();
            var work = tensor.is_contiguous() ? tensor : tensor.contiguous();
            var flat = work.view(-1);
            Meet(CollectiveKind.AllReduce, Describe("AllReduce", tensor, op.ToString()), flat);

            // Each rank reduces its own chunk of the flattened tensor in place (no other rank reads that chunk of it), then
            // copies the other ranks' reduced chunks from their tensors: about half the memory traffic of reducing into a
            // buffer and copying every chunk back, and no buffer at two ranks.
            var (start, length) = Chunk(flat.numel(), Size, Rank);
            if (length > 0)
            {
                using var own = flat.narrow(0, start, length);
                ReduceInto(own, k => ((torch.Tensor)group.Inputs[k]!).narrow(0, start, length), op);
            }
            group.Arrive(Rank, "AllReduce");
            for (int k = 0; k < Size; k++)
            {
                var (s, l) = Chunk(flat.numel(), Size, k);
                if (l == 0 || k == Rank) continue;
                using var chunk = flat.narrow(0, s, l);
                using var reduced = ((torch.Tensor)group.Inputs[k]!).narrow(0, s, l);
                chunk.copy_(reduced);
            }
            group.Arrive(Rank, "AllReduce");
            Release();
            if (!ReferenceEquals(work, tensor)) tensor.copy_(work);
            // A tensor passed to a native call is not kept alive by the call: the GC, run by another rank's thread,
            // could finalize a temporary during the copy and free what it reads. These stay alive to here.
            GC.KeepAlive(work);
            GC.KeepAlive(flat);
        }

        /// <summary>Threads have no transport to progress in the background: the reduction completes before this returns.</summary>
        public PendingCollective StartAllReduce(torch.Tensor tensor, ReduceOp op = ReduceOp.Sum)
        {
            AllReduce(tensor, op);
            return PendingCollective.Completed;
        }

        /// <inheritdoc/>
        public torch.Tensor AllGather(torch.Tensor tensor, long dim) => CollectiveArguments.AllGather(this, tensor, dim);

        /// <inheritdoc/>
        public torch.Tensor ReduceScatter(torch.Tensor tensor, long dim, ReduceOp op = ReduceOp.Sum) => CollectiveArguments.ReduceScatter(this, tensor, dim, op);

        /// <inheritdoc/>
        public void AllGatherInto(torch.Tensor tensor, torch.Tensor output, long dim)
        {
            using var noGrad = torch.no_grad();
            var facts = new TensorFacts(tensor);
            var axis = Axis(facts, dim);
            long part = facts.Size(axis);
            var outputFacts = new TensorFacts(output);
            CheckOutput(facts, outputFacts, axis, part * Size, "AllGather");
            if (TrySmallAllGather(facts, outputFacts, axis)) return;
            Meet(CollectiveKind.AllGather, Describe("AllGather", tensor, $"dim {axis}"), tensor);
            for (int k = 0; k < Size; k++)
            {
                using var block = output.narrow(axis, k * part, part);
                block.copy_((torch.Tensor)group.Inputs[k]!);
            }
            group.Arrive(Rank, "AllGather");
            Release();
        }

        /// <inheritdoc/>
        public void ReduceScatterInto(torch.Tensor tensor, torch.Tensor output, long dim, ReduceOp op = ReduceOp.Sum)
        {
            CheckReduction(tensor, op);
            using var noGrad = torch.no_grad();
            var facts = new TensorFacts(tensor);
            var axis = Axis(facts, dim);
            CheckDivisible(facts, axis, Size);
            long part = facts.Size(axis) / Size;
            var outputFacts = new TensorFacts(output);
            CheckOutput(facts, outputFacts, axis, part, "ReduceScatter");
            if (TrySmallReduceScatter(facts, outputFacts, axis, op)) return;
            Meet(CollectiveKind.ReduceScatter, Describe("ReduceScatter", tensor, $"dim {axis}, {op}"), tensor);
            // Rank order, as in AllReduce, so the sum is the same on every rank.
            torch.Tensor Slice(int k) => ((torch.Tensor)group.Inputs[k]!).narrow(axis, Rank * part, part);
            using (var first = Slice(0)) output.copy_(first); // each slice held across the call that reads it (see AllReduce)
            for (int k = 1; k < Size; k++)
            {
                using var other = Slice(k);
                if (op == ReduceOp.Max)
                {
                    using var larger = output.maximum(other);
                    output.copy_(larger);
                }
                else output.add_(other);
            }
            if (op == ReduceOp.Average) output.DivideInPlace(Size);
            group.Arrive(Rank, "ReduceScatter");
            Release();
        }

        /// <inheritdoc/>
        public void Broadcast(torch.Tensor tensor, int root)
        {
            if (root < 0 || root >= Size) throw new ArgumentOutOfRangeException(nameof(root), $"Broadcast root {root} is outside the {group.Name} of size {Size}.");
            if (TrySmallBroadcast(tensor, root)) return;
            using var noGrad = torch.no_grad();
            Meet(CollectiveKind.Broadcast, Describe("Broadcast", tensor, $"root {root}"), tensor);
            if (Rank != root) tensor.copy_((torch.Tensor)group.Inputs[root]!);
            group.Arrive(Rank, "Broadcast");
            Release();
        }

        /// <inheritdoc/>
        public void Barrier()
        {
            // One barrier: the signatures of consecutive collectives live in different slots (Meet).
            Meet(CollectiveKind.Barrier, $"Barrier #{sequence++}{At()}", null);
            Release();
        }

        /// <inheritdoc/>
        public void Send(torch.Tensor tensor, int destination, int tag = 0)
        {
            CheckPeer(destination, "Send to");
            using var noGrad = torch.no_grad();
            // The copy belongs to the receiver, not to the sender's dispose scope (which may end before it is received).
            group.Deliver(Rank, destination, tag, tensor.detach().clone().DetachFromDisposeScope());
        }

        /// <summary>
        /// Receives the tensor <paramref name="source"/> sent, whatever its shape: the sender's copy itself, now
        /// owned by the caller. Between threads no shape needs to travel ahead of the data.
        /// </summary>
        internal torch.Tensor ReceiveTensor(int source, int tag)
        {
            CheckPeer(source, "Receive from");
            long number = recorder.Begin(group.Name, CollectiveKind.Receive, tag, $"Receive (tag {tag}) from rank {group.WorldRanks[source]}");
            var message = group.Collect(source, Rank, tag);
            recorder.End(number);
            return message;
        }

        /// <inheritdoc/>
        public void Receive(torch.Tensor into, int source, int tag = 0)
        {
            CheckPeer(source, "Receive from");
            using var noGrad = torch.no_grad();
            long number = recorder.Begin(group.Name, CollectiveKind.Receive, tag, $"Receive (tag {tag}) of {Shape(into)} from rank {group.WorldRanks[source]}");
            using var message = group.Collect(source, Rank, tag);
            recorder.End(number);
            if (!message.shape.SequenceEqual(into.shape) || message.dtype != into.dtype)
                throw new CollectiveMismatchException(
                    $"Rank {group.WorldRanks[Rank]} receives into {Shape(into)} but rank {group.WorldRanks[source]} sent {Shape(message)} (tag {tag}, {group.Name}).");
            into.copy_(message);
        }

        /// <summary>
        /// Posts this rank's input, waits for all, and compares signatures. A collective that reads posted tensors passes
        /// one more barrier before the next Meet, so no rank overwrites an input slot another still reads; signatures
        /// alternate between two sets, so a collective of one barrier can follow any other.
        /// </summary>
        private void Meet(CollectiveKind kind, string signature, torch.Tensor? input)
        {
            recording = recorder.Begin(group.Name, kind, sequence - 1, signature);
            group.Inputs[Rank] = posted[0] = input is null ? null : Share(input);
            var signatures = group.Signatures(group.Generation);
            signatures[Rank] = signature;
            group.Arrive(Rank, signature);
            for (int k = 0; k < Size; k++)
            {
                if (signatures[k] != signature)
                    throw new CollectiveMismatchException(
                        $"Collective mismatch in the {group.Name}: rank {group.WorldRanks[Rank]} issued {signature}, rank {group.WorldRanks[k]} issued {signatures[k]}.");
            }
        }

        /// <summary>"AllReduce #4 of float32[2, 8] (Sum) at 'Sample.Block.down #1'": what every rank must agree on.</summary>
        /// <summary>
        /// What this rank posts for the others to read: its own handle on the tensor's storage, outside any dispose scope.
        /// If the run is aborted while a peer still reads it, this rank unwinds and its dispose scope frees the caller's
        /// tensors, but the storage lives on through this handle until the GC finalizes it; the peer never reads freed memory.
        /// </summary>
        private static torch.Tensor Share(torch.Tensor tensor) => tensor.alias().DetachFromDisposeScope();

        /// <summary>Every peer has passed the collective's last barrier: nobody reads this rank's posted handles any more.</summary>
        private void Release()
        {
            recorder.End(recording);
            for (int i = 0; i < posted.Length; i++)
            {
                posted[i]?.Dispose();
                posted[i] = null;
            }
        }

        private string Describe(string operation, torch.Tensor tensor, string detail) =>
            $"{operation} #{sequence++} of {Shape(tensor)} ({detail}){At()}";

        private static string At() => CollectiveSite.Current is { } site ? $" at '{site}'" : "";

        /// <summary>
        /// <paramref name="own"/> (this rank's slice) replaced by all ranks' slices combined in rank order, as the small path
        /// combines them. Rank 0 and rank 1 need no buffer (x1 + x0 is x0 + x1, bitwise); a later rank sums the ranks before
        /// it in a temporary first.
        /// </summary>
        /// <remarks>Each slice is held in a variable across the native call that reads it (see AllReduce).</remarks>
        private void ReduceInto(torch.Tensor own, Func<int, torch.Tensor> slice, ReduceOp op)
        {
            torch.Tensor? before = null;
            for (int k = 0; k < Rank; k++)
            {
                using var other = slice(k);
                if (before is null && Rank == 1) Combine(own, other, op);
                else if (before is null) before = other.clone();
                else Combine(before, other, op);
            }
            if (before is not null)
            {
                Combine(own, before, op);
                before.Dispose();
            }
            for (int k = Rank + 1; k < Size; k++)
            {
                using var other = slice(k);
                Combine(own, other, op);
            }
            if (op == ReduceOp.Average) own.DivideInPlace(Size);
        }

        /// <summary><paramref name="into"/> combined with <paramref name="other"/> in place (commutative: sum or max).</summary>
        private static void Combine(torch.Tensor into, torch.Tensor other, ReduceOp op)
        {
            if (op != ReduceOp.Max)
            {
                into.add_(other);
                return;
            }
            using var larger = into.maximum(other);
            into.copy_(larger);
        }

        private void CheckPeer(int peer, string what)
        {
            if (peer < 0 || peer >= Size || peer == Rank)
                throw new ArgumentOutOfRangeException(nameof(peer), $"{what} rank {peer}: not another rank of the {group.Name} (size {Size}, this rank {Rank}).");
        }

        internal static (long Start, long Length) Chunk(long count, int parts, int index)
        {
            long size = (count + parts - 1) / parts;
            long start = Math.Min(count, size * index);
            return (start, Math.Min(size, count - start));
        }
    }
}
