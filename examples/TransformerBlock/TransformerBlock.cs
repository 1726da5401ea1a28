using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace ModelParallel.Examples.Transformer
{
    /// <summary>
    /// A pre-norm transformer block, written at single-device semantics and partitioned Megatron-style by
    /// attributes alone. Attention: a fused q/k/v projection (ColumnParallel; the generator sees forward split its
    /// output in three, so each rank holds its heads of q, k and v), the heads sharded through view and transpose,
    /// scaled dot-product attention per local head, and the output projection (RowParallel). MLP: ColumnParallel
    /// then RowParallel. Two all-reduces forward and two backward per block; no collective is written here.
    /// The q/k/v projection has no bias (as in most current models): a key bias does not change attention, so its
    /// gradient is zero, and optimizers such as Adam would turn rounding noise in it into steps.
    /// </summary>
    [ParallelModule(TensorParallelSizes = new[] { 1, 2, 4, 8 })]
    public sealed partial class TransformerBlock : nn.Module<Tensor, Tensor>
    {
        private readonly LayerNorm attentionNorm;
        [ColumnParallel] private readonly Linear qkv;
        [RowParallel] private readonly Linear projection;
        private readonly LayerNorm mlpNorm;
        [ColumnParallel] private readonly Linear up;
        [RowParallel] private readonly Linear down;
        private readonly long heads;
        private readonly long headSize;

        public TransformerBlock(long width, long heads, long hidden) : base(nameof(TransformerBlock))
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
