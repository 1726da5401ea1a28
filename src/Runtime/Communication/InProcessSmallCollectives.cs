using System;
using System.Numerics;
using System.Runtime.CompilerServices;
using TorchSharp;

namespace ModelParallel.Communication
{
    /// <summary>
    /// Small collectives between threads in one barrier: each rank copies its contribution into its own pinned buffer of
    /// the group (<see cref="InProcessGroup.Scratch"/>), all meet, and each rank reads the others' buffers into its own
    /// tensor. No libtorch call and no tensor handle is made for the data: at 1K elements those cost more than the
    /// collective. Taken for contiguous CPU tensors of at most <see cref="InProcessGroup.ScratchBytes"/> per rank, float32
    /// or float64 (any dtype for gathers and broadcasts); everything else takes the general path. Reductions add in rank
    /// order, as the general path does, so every rank gets bitwise the same result.
    /// </summary>
    public sealed unsafe partial class InProcessCommunicator
    {
        private bool TrySmallAllReduce(torch.Tensor tensor, ReduceOp op)
        {
            var facts = new TensorFacts(tensor);
            if (!Fits(facts, arithmetic: true)) return false;
            long count = facts.Elements, bytes = count * ElementSize(facts.Type), generation = group.Generation;
            Buffer.MemoryCopy((void*)facts.Data, group.Scratch(Rank, generation), bytes, bytes);
            Meet(CollectiveKind.AllReduce, Describe("AllReduce", tensor, op.ToString()), null);
            if (facts.Type == torch.ScalarType.Float32) Reduce((float*)facts.Data, generation, 0, count, op);
            else Reduce((double*)facts.Data, generation, 0, count, op);
            VersionCounter.Bump(tensor);
            Release();
            return true;
        }

        private bool TrySmallAllGather(TensorFacts input, TensorFacts output, long axis)
        {
            if (!Fits(input, arithmetic: false) || !output.IsContiguous || !output.OnCpu) return false;
            long element = ElementSize(input.Type), bytes = input.Elements * element, generation = group.Generation;
            Buffer.MemoryCopy((void*)input.Data, group.Scratch(Rank, generation), bytes, bytes);
            Meet(CollectiveKind.AllGather, Describe("AllGather", input.Tensor, $"dim {axis}"), null);
            // Row-major: for each index of the dimensions before `axis`, the ranks' blocks follow one another.
            long outer = Outer(input, axis), block = bytes / Math.Max(outer, 1);
            var target = (byte*)output.Data;
            for (long o = 0; o < outer; o++)
                for (int k = 0; k < Size; k++, target += block)
                    Buffer.MemoryCopy(group.Scratch(k, generation) + o * block, target, block, block);
            VersionCounter.Bump(output.Tensor);
            Release();
            return true;
        }

        private bool TrySmallReduceScatter(TensorFacts input, TensorFacts output, long axis, ReduceOp op)
        {
            if (!Fits(input, arithmetic: true) || !output.IsContiguous || !output.OnCpu) return false;
            long element = ElementSize(input.Type), bytes = input.Elements * element, generation = group.Generation;
            Buffer.MemoryCopy((void*)input.Data, group.Scratch(Rank, generation), bytes, bytes);
            Meet(CollectiveKind.ReduceScatter, Describe("ReduceScatter", input.Tensor, $"dim {axis}, {op}"), null);
            // For each index of the dimensions before `axis`, this rank's part is the Rank-th of Size equal blocks.
            long outer = Outer(input, axis), row = input.Elements / Math.Max(outer, 1), part = row / Size;
            for (long o = 0; o < outer; o++)
            {
                if (input.Type == torch.ScalarType.Float32) Reduce((float*)output.Data + o * part, generation, o * row + Rank * part, part, op);
                else Reduce((double*)output.Data + o * part, generation, o * row + Rank * part, part, op);
            }
            VersionCounter.Bump(output.Tensor);
            Release();
            return true;
        }

        private bool TrySmallBroadcast(torch.Tensor tensor, int root)
        {
            var facts = new TensorFacts(tensor);
            if (!Fits(facts, arithmetic: false)) return false;
            long bytes = facts.Elements * ElementSize(facts.Type), generation = group.Generation;
            if (Rank == root) Buffer.MemoryCopy((void*)facts.Data, group.Scratch(Rank, generation), bytes, bytes);
            Meet(CollectiveKind.Broadcast, Describe("Broadcast", tensor, $"root {root}"), null);
            if (Rank != root)
            {
                Buffer.MemoryCopy(group.Scratch(root, generation), (void*)facts.Data, bytes, bytes);
                VersionCounter.Bump(tensor);
            }
            Release();
            return true;
        }

        /// <summary><paramref name="target"/>[i] = the ranks' buffers at <paramref name="offset"/> + i, combined in rank order.</summary>
        /// <remarks>Optimized from the first call: unoptimized (tier-0) vector code is slower than the collective.</remarks>
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        private void Reduce<T>(T* target, long generation, long offset, long count, ReduceOp op) where T : unmanaged, INumber<T>
        {
            var first = (T*)group.Scratch(0, generation) + offset;
            new ReadOnlySpan<T>(first, checked((int)count)).CopyTo(new Span<T>(target, (int)count));
            var result = new Span<T>(target, (int)count);
            for (int k = 1; k < Size; k++)
            {
                Combine(result, new ReadOnlySpan<T>((T*)group.Scratch(k, generation) + offset, (int)count), max: op == ReduceOp.Max);
            }
            if (op == ReduceOp.Average)
            {
                T size = T.CreateChecked(Size);
                for (int i = 0; i < result.Length; i++) result[i] /= size;
            }
        }

        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        private static void Combine<T>(Span<T> result, ReadOnlySpan<T> other, bool max) where T : unmanaged, INumber<T>
        {
            int i = 0;
            if (!max && Vector.IsHardwareAccelerated)
            {
                for (; i <= result.Length - Vector<T>.Count; i += Vector<T>.Count)
                    (new Vector<T>(result[i..]) + new Vector<T>(other[i..])).CopyTo(result[i..]);
            }
            // Max as libtorch's maximum: NaN wins (T.MaxNumber would drop it).
            for (; i < result.Length; i++) result[i] = max ? (T.IsNaN(result[i]) || T.IsNaN(other[i]) ? T.CreateChecked(double.NaN) : T.Max(result[i], other[i])) : result[i] + other[i];
        }

        private static bool Fits(TensorFacts facts, bool arithmetic) =>
            facts.OnCpu && facts.IsContiguous && (facts.Type is torch.ScalarType.Float32 or torch.ScalarType.Float64 || !arithmetic && ElementSize(facts.Type) > 0)
            && facts.Elements * ElementSize(facts.Type) <= InProcessGroup.ScratchBytes;

        /// <summary>The product of the sizes before <paramref name="axis"/>.</summary>
        private static long Outer(TensorFacts facts, long axis)
        {
            long outer = 1;
            for (long d = 0; d < axis; d++) outer *= facts.Size(d);
            return outer;
        }

        private static long ElementSize(torch.ScalarType type) => type switch
        {
            torch.ScalarType.Float32 or torch.ScalarType.Int32 => 4,
            torch.ScalarType.Float64 or torch.ScalarType.Int64 => 8,
            torch.ScalarType.Float16 or torch.ScalarType.BFloat16 or torch.ScalarType.Int16 => 2,
            torch.ScalarType.Int8 or torch.ScalarType.Byte or torch.ScalarType.Bool => 1,
            _ => 0,
        };
    }
}
