using System;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace ModelParallel.Tests.Models
{
    /// <summary>
    /// Grouped-query attention (LLaMA 2/3, Mistral): fewer key/value heads than query heads, each key/value head serving
    /// Heads / KvHeads query heads, repeated with repeat_interleave along the (sharded) heads; rotary position embeddings
    /// from replicated cos/sin tables broadcast over the sharded heads, with the rotation in a helper method.
    /// </summary>
    [ParallelModule]
    public sealed partial class GroupedQueryAttention : nn.Module<Tensor, Tensor>
    {
        public const long Heads = 8, KvHeads = 4, HeadSize = 4, Width = Heads * HeadSize;

        [ColumnParallel] private readonly Linear q;
        [ColumnParallel] private readonly Linear k;
        [ColumnParallel] private readonly Linear v;
        [RowParallel] private readonly Linear o;

        public GroupedQueryAttention() : base(nameof(GroupedQueryAttention))
        {
            q = nn.Linear(Width, Heads * HeadSize, hasBias: false);
            k = nn.Linear(Width, KvHeads * HeadSize, hasBias: false);
            v = nn.Linear(Width, KvHeads * HeadSize, hasBias: false);
            o = nn.Linear(Heads * HeadSize, Width, hasBias: false);
            RegisterComponents();
        }

        public override Tensor forward(Tensor x)
        {
            long batch = x.shape[0], time = x.shape[1];
            var queries = q.forward(x).view(batch, time, Heads, HeadSize).transpose(1, 2);
            var keys = k.forward(x).view(batch, time, KvHeads, HeadSize).transpose(1, 2);
            var values = v.forward(x).view(batch, time, KvHeads, HeadSize).transpose(1, 2);
            var frequencies = torch.exp(torch.arange(0, HeadSize, 2, dtype: float32) * (-Math.Log(10000.0) / HeadSize));
            var angles = torch.outer(torch.arange(time, dtype: float32), frequencies);
            var cos = torch.cat(new[] { angles, angles }, -1).cos();
            var sin = torch.cat(new[] { angles, angles }, -1).sin();
            queries = queries * cos + RotateHalf(queries) * sin;
            keys = keys * cos + RotateHalf(keys) * sin;
            keys = keys.repeat_interleave(Heads / KvHeads, 1);
            values = values.repeat_interleave(Heads / KvHeads, 1);
            var attended = nn.functional.scaled_dot_product_attention(queries, keys, values, is_casual: true);
            return o.forward(attended.transpose(1, 2).contiguous().view(batch, time, Heads * HeadSize));
        }

        private static Tensor RotateHalf(Tensor t)
        {
            var halves = t.chunk(2, -1);
            return torch.cat(new[] { -halves[1], halves[0] }, -1);
        }
    }

    /// <summary>
    /// Grouped-query attention as LLaMA's reference code repeats keys and values: unsqueeze, expand to the written
    /// (logical) number of heads, reshape; the generator divides the sharded size of the expand and the reshape by tp.
    /// </summary>
    [ParallelModule]
    public sealed partial class ExpandedGroupedQueryAttention : nn.Module<Tensor, Tensor>
    {
        public const long Heads = 8, KvHeads = 4, HeadSize = 4, Width = Heads * HeadSize;

        [ColumnParallel] private readonly Linear q;
        [ColumnParallel] private readonly Linear kv;
        [RowParallel] private readonly Linear o;

        public ExpandedGroupedQueryAttention() : base(nameof(ExpandedGroupedQueryAttention))
        {
            q = nn.Linear(Width, Heads * HeadSize, hasBias: false);
            kv = nn.Linear(Width, 2 * KvHeads * HeadSize, hasBias: false);
            o = nn.Linear(Heads * HeadSize, Width, hasBias: false);
            RegisterComponents();
        }

        public override Tensor forward(Tensor x)
        {
            long batch = x.shape[0], time = x.shape[1];
            var queries = q.forward(x).view(batch, time, Heads, HeadSize).transpose(1, 2);
            var parts = kv.forward(x).chunk(2, -1);
            var keys = parts[0].view(batch, time, KvHeads, HeadSize).transpose(1, 2);
            var values = parts[1].view(batch, time, KvHeads, HeadSize).transpose(1, 2);
            keys = keys.unsqueeze(2).expand(batch, KvHeads, Heads / KvHeads, time, HeadSize).reshape(batch, Heads, time, HeadSize);
            values = values.unsqueeze(2).expand(batch, KvHeads, Heads / KvHeads, time, HeadSize).reshape(batch, Heads, time, HeadSize);
            var attended = nn.functional.scaled_dot_product_attention(queries, keys, values, is_casual: true);
            return o.forward(attended.transpose(1, 2).contiguous().view(batch, time, Heads * HeadSize));
        }
    }

    /// <summary>The plain form of <see cref="GroupedQueryAttention"/>, with the same parameter names.</summary>
    public sealed class PlainGroupedQueryAttention : nn.Module<Tensor, Tensor>
    {
        private const long Heads = GroupedQueryAttention.Heads, KvHeads = GroupedQueryAttention.KvHeads, HeadSize = GroupedQueryAttention.HeadSize, Width = Heads * HeadSize;
        private readonly Linear q, k, v, o;

        public PlainGroupedQueryAttention() : base(nameof(PlainGroupedQueryAttention))
        {
            q = nn.Linear(Width, Heads * HeadSize, hasBias: false);
            k = nn.Linear(Width, KvHeads * HeadSize, hasBias: false);
            v = nn.Linear(Width, KvHeads * HeadSize, hasBias: false);
            o = nn.Linear(Heads * HeadSize, Width, hasBias: false);
            RegisterComponents();
        }

        public override Tensor forward(Tensor x)
        {
            long batch = x.shape[0], time = x.shape[1];
            var queries = q.forward(x).view(batch, time, Heads, HeadSize).transpose(1, 2);
            var keys = k.forward(x).view(batch, time, KvHeads, HeadSize).transpose(1, 2);
            var values = v.forward(x).view(batch, time, KvHeads, HeadSize).transpose(1, 2);
            var frequencies = torch.exp(torch.arange(0, HeadSize, 2, dtype: float32) * (-Math.Log(10000.0) / HeadSize));
            var angles = torch.outer(torch.arange(time, dtype: float32), frequencies);
            var cos = torch.cat(new[] { angles, angles }, -1).cos();
            var sin = torch.cat(new[] { angles, angles }, -1).sin();
            var q1 = queries.chunk(2, -1);
            queries = queries * cos + torch.cat(new[] { -q1[1], q1[0] }, -1) * sin;
            var k1 = keys.chunk(2, -1);
            keys = keys * cos + torch.cat(new[] { -k1[1], k1[0] }, -1) * sin;
            keys = keys.repeat_interleave(Heads / KvHeads, 1);
            values = values.repeat_interleave(Heads / KvHeads, 1);
            var attended = nn.functional.scaled_dot_product_attention(queries, keys, values, is_casual: true);
            return o.forward(attended.transpose(1, 2).contiguous().view(batch, time, Heads * HeadSize));
        }
    }

    /// <summary>The plain form of <see cref="ExpandedGroupedQueryAttention"/>, with the same parameter names.</summary>
    public sealed class PlainExpandedGroupedQueryAttention : nn.Module<Tensor, Tensor>
    {
        private const long Heads = ExpandedGroupedQueryAttention.Heads, KvHeads = ExpandedGroupedQueryAttention.KvHeads, HeadSize = ExpandedGroupedQueryAttention.HeadSize, Width = Heads * HeadSize;
        private readonly Linear q, kv, o;

        public PlainExpandedGroupedQueryAttention() : base(nameof(PlainExpandedGroupedQueryAttention))
        {
            q = nn.Linear(Width, Heads * HeadSize, hasBias: false);
            kv = nn.Linear(Width, 2 * KvHeads * HeadSize, hasBias: false);
            o = nn.Linear(Heads * HeadSize, Width, hasBias: false);
            RegisterComponents();
        }

        public override Tensor forward(Tensor x)
        {
            long batch = x.shape[0], time = x.shape[1];
            var queries = q.forward(x).view(batch, time, Heads, HeadSize).transpose(1, 2);
            var parts = kv.forward(x).chunk(2, -1);
            var keys = parts[0].view(batch, time, KvHeads, HeadSize).transpose(1, 2);
            var values = parts[1].view(batch, time, KvHeads, HeadSize).transpose(1, 2);
            keys = keys.unsqueeze(2).expand(batch, KvHeads, Heads / KvHeads, time, HeadSize).reshape(batch, Heads, time, HeadSize);
            values = values.unsqueeze(2).expand(batch, KvHeads, Heads / KvHeads, time, HeadSize).reshape(batch, Heads, time, HeadSize);
            var attended = nn.functional.scaled_dot_product_attention(queries, keys, values, is_casual: true);
            return o.forward(attended.transpose(1, 2).contiguous().view(batch, time, Heads * HeadSize));
        }
    }

    /// <summary>
    /// Multi-query attention (PaLM, Falcon): one key/value head for all query heads. The key/value projection stays whole
    /// on every rank (it cannot be split into one head's pieces); its output is repeated to the query's heads, and the
    /// generator slices each rank's heads of it before attention.
    /// </summary>
    [ParallelModule]
    public sealed partial class MultiQueryAttention : nn.Module<Tensor, Tensor>
    {
        public const long Heads = 4, HeadSize = 4, Width = Heads * HeadSize;

        [ColumnParallel] private readonly Linear q;
        [Replicated] private readonly Linear kv;
        [RowParallel] private readonly Linear o;

        public MultiQueryAttention() : base(nameof(MultiQueryAttention))
        {
            q = nn.Linear(Width, Heads * HeadSize, hasBias: false);
            kv = nn.Linear(Width, 2 * HeadSize, hasBias: false);
            o = nn.Linear(Heads * HeadSize, Width, hasBias: false);
            RegisterComponents();
        }

        public override Tensor forward(Tensor x)
        {
            long batch = x.shape[0], time = x.shape[1];
            var queries = q.forward(x).view(batch, time, Heads, HeadSize).transpose(1, 2);
            var parts = kv.forward(x).view(batch, time, 2, HeadSize).transpose(1, 2).chunk(2, 1);
            var keys = parts[0].expand(batch, Heads, time, HeadSize);
            var values = parts[1].repeat_interleave(Heads, 1);
            var attended = nn.functional.scaled_dot_product_attention(queries, keys, values, is_casual: true);
            return o.forward(attended.transpose(1, 2).contiguous().view(batch, time, Heads * HeadSize));
        }
    }

    /// <summary>The plain form of <see cref="MultiQueryAttention"/>, with the same parameter names.</summary>
    public sealed class PlainMultiQueryAttention : nn.Module<Tensor, Tensor>
    {
        private const long Heads = MultiQueryAttention.Heads, HeadSize = MultiQueryAttention.HeadSize, Width = Heads * HeadSize;
        private readonly Linear q, kv, o;

        public PlainMultiQueryAttention() : base(nameof(PlainMultiQueryAttention))
        {
            q = nn.Linear(Width, Heads * HeadSize, hasBias: false);
            kv = nn.Linear(Width, 2 * HeadSize, hasBias: false);
            o = nn.Linear(Heads * HeadSize, Width, hasBias: false);
            RegisterComponents();
        }

        public override Tensor forward(Tensor x)
        {
            long batch = x.shape[0], time = x.shape[1];
            var queries = q.forward(x).view(batch, time, Heads, HeadSize).transpose(1, 2);
            var parts = kv.forward(x).view(batch, time, 2, HeadSize).transpose(1, 2).chunk(2, 1);
            var keys = parts[0].expand(batch, Heads, time, HeadSize);
            var values = parts[1].repeat_interleave(Heads, 1);
            var attended = nn.functional.scaled_dot_product_attention(queries, keys, values, is_casual: true);
            return o.forward(attended.transpose(1, 2).contiguous().view(batch, time, Heads * HeadSize));
        }
    }
}
