using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace ModelParallel.Examples.Gpt.Model
{
    /// <summary>
    /// A GPT-2 block: pre-norm causal self-attention with a fused q/k/v projection, then a GELU MLP, each added to
    /// the residual stream. Partitioned Megatron-style by the attributes alone: q/k/v and the MLP's first layer are
    /// ColumnParallel (each tp rank holds its heads and its slice of the hidden layer), the two output projections
    /// RowParallel; one all-reduce in forward and one in backward for each half. Unlike GPT-2, q/k/v have no bias (as in
    /// most current models): a key bias does not change attention, so its true gradient is zero and AdamW would turn
    /// rounding noise in it into full-size steps.
    /// </summary>
    [ParallelModule]
    public sealed partial class GptBlock : nn.Module<Tensor, Tensor>
    {
        private readonly LayerNorm attentionNorm;
        [ColumnParallel] private readonly Linear qkv;
        [RowParallel] private readonly Linear projection;
        private readonly LayerNorm mlpNorm;
        [ColumnParallel] private readonly Linear up;
        [RowParallel] private readonly Linear down;
        private readonly long heads;
        private readonly long headSize;

        public GptBlock(long width, long heads, long hidden) : base(nameof(GptBlock))
        {
            attentionNorm = nn.LayerNorm(width);
            qkv = nn.Linear(width, 3 * width, hasBias: false);
            projection = nn.Linear(width, width);
            mlpNorm = nn.LayerNorm(width);
            up = nn.Linear(width, hidden);
            down = nn.Linear(hidden, width);
            this.heads = heads;
            headSize = width / heads;
            RegisterComponents();
        }

        public override Tensor forward(Tensor x)
        {
            long batch = x.shape[0], time = x.shape[1];
            var parts = qkv.forward(attentionNorm.forward(x)).chunk(3, -1);
            var q = parts[0].view(batch, time, heads, headSize).transpose(1, 2);
            var k = parts[1].view(batch, time, heads, headSize).transpose(1, 2);
            var v = parts[2].view(batch, time, heads, headSize).transpose(1, 2);
            var attended = nn.functional.scaled_dot_product_attention(q, k, v, is_casual: true);
            var merged = attended.transpose(1, 2).contiguous().view(batch, time, heads * headSize);
            x = x + projection.forward(merged);
            return x + down.forward(nn.functional.gelu(up.forward(mlpNorm.forward(x))));
        }
    }
}
