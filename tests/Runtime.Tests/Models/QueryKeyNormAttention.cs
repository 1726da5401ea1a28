using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace ModelParallel.Tests.Models
{
    /// <summary>
    /// Attention with a LayerNorm over each query and key head (QK-norm, as OLMo 2 and Gemma 3 have): the norms run on
    /// heads sharded over tp, each rank normalizing its own heads; their weights are whole, and their gradients (each
    /// rank's from its heads only) are all-reduced over tp by the generated code.
    /// </summary>
    [ParallelModule]
    public sealed partial class QueryKeyNormAttention : nn.Module<Tensor, Tensor>
    {
        public const long Heads = 4, HeadSize = 4, Width = Heads * HeadSize;

        [ColumnParallel] private readonly Linear qkv;
        [RowParallel] private readonly Linear o;
        private readonly LayerNorm queryNorm;
        private readonly LayerNorm keyNorm;

        public QueryKeyNormAttention() : base(nameof(QueryKeyNormAttention))
        {
            qkv = nn.Linear(Width, 3 * Width, hasBias: false);
            o = nn.Linear(Width, Width, hasBias: false);
            queryNorm = nn.LayerNorm(HeadSize);
            keyNorm = nn.LayerNorm(HeadSize, bias: false); // a key bias does not change attention: its gradient is 0, rounding noise
            RegisterComponents();
        }

        public override Tensor forward(Tensor x)
        {
            long batch = x.shape[0], time = x.shape[1];
            var parts = qkv.forward(x).chunk(3, -1);
            var queries = queryNorm.forward(parts[0].view(batch, time, Heads, HeadSize)).transpose(1, 2);
            var keys = keyNorm.forward(parts[1].view(batch, time, Heads, HeadSize)).transpose(1, 2);
            var values = parts[2].view(batch, time, Heads, HeadSize).transpose(1, 2);
            var attended = nn.functional.scaled_dot_product_attention(queries, keys, values, is_casual: true);
            return o.forward(attended.transpose(1, 2).contiguous().view(batch, time, Width));
        }
    }

    /// <summary>The plain form of <see cref="QueryKeyNormAttention"/>, with the same parameter names.</summary>
    public sealed class PlainQueryKeyNormAttention : nn.Module<Tensor, Tensor>
    {
        private const long Heads = QueryKeyNormAttention.Heads, HeadSize = QueryKeyNormAttention.HeadSize, Width = QueryKeyNormAttention.Width;
        private readonly Linear qkv;
        private readonly Linear o;
        private readonly LayerNorm queryNorm;
        private readonly LayerNorm keyNorm;

        public PlainQueryKeyNormAttention() : base(nameof(PlainQueryKeyNormAttention))
        {
            qkv = nn.Linear(Width, 3 * Width, hasBias: false);
            o = nn.Linear(Width, Width, hasBias: false);
            queryNorm = nn.LayerNorm(HeadSize);
            keyNorm = nn.LayerNorm(HeadSize, bias: false); // a key bias does not change attention: its gradient is 0, rounding noise
            RegisterComponents();
        }

        public override Tensor forward(Tensor x)
        {
            long batch = x.shape[0], time = x.shape[1];
            var parts = qkv.forward(x).chunk(3, -1);
            var queries = queryNorm.forward(parts[0].view(batch, time, Heads, HeadSize)).transpose(1, 2);
            var keys = keyNorm.forward(parts[1].view(batch, time, Heads, HeadSize)).transpose(1, 2);
            var values = parts[2].view(batch, time, Heads, HeadSize).transpose(1, 2);
            var attended = nn.functional.scaled_dot_product_attention(queries, keys, values, is_casual: true);
            return o.forward(attended.transpose(1, 2).contiguous().view(batch, time, Width));
        }
    }
}
