using System;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace ModelParallel.Tests.Models
{
    /// <summary>
    /// A pre-norm transformer block under sequence parallelism (Megatron SP): the residual stream x, the norms and the
    /// residual adds are split along the sequence; qkv and up all-gather it, projection and down reduce-scatter back to
    /// it. Sizes are read from the gathered projection (its sequence is whole), never from the split x.
    /// </summary>
    [ParallelModule(SequenceParallel = true)]
    public sealed partial class SequenceParallelBlock : nn.Module<Tensor, Tensor>
    {
        private readonly LayerNorm attentionNorm;
        [ColumnParallel] private readonly Linear qkv;
        [RowParallel] private readonly Linear projection;
        private readonly LayerNorm mlpNorm;
        [ColumnParallel] private readonly Linear up;
        [RowParallel] private readonly Linear down;
        private readonly long heads;
        private readonly long headSize;

        public SequenceParallelBlock(long width, long heads, long hidden) : base(nameof(SequenceParallelBlock))
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
            var fused = qkv.forward(attentionNorm.forward(x));
            long batch = fused.shape[^3], time = fused.shape[^2];
            var parts = fused.chunk(3, -1);
            var q = parts[0].view(batch, time, heads, headSize).transpose(1, 2);
            var k = parts[1].view(batch, time, heads, headSize).transpose(1, 2);
            var v = parts[2].view(batch, time, heads, headSize).transpose(1, 2);
            var attended = nn.functional.scaled_dot_product_attention(q, k, v, is_casual: true);
            var merged = attended.transpose(1, 2).contiguous().view(batch, time, heads * headSize);
            x = x + projection.forward(merged);
            return x + down.forward(nn.functional.gelu(up.forward(mlpNorm.forward(x))));
        }
    }

    /// <summary>
    /// Sequence-parallel blocks between a whole input and a whole output: the input norm's output is split along the
    /// sequence where it is produced (the blocks take S(-2)), the final norm runs on the split stream, up all-gathers it.
    /// </summary>
    [ParallelModule]
    public sealed partial class SequenceParallelStack : nn.Module<Tensor, Tensor>
    {
        private readonly LayerNorm inputNorm;
        private readonly ModuleList<SequenceParallelBlock> blocks = new();
        private readonly LayerNorm norm;
        [ColumnParallel] private readonly Linear up;
        [RowParallel] private readonly Linear down;

        public SequenceParallelStack(int depth, long width, long heads, long hidden) : base(nameof(SequenceParallelStack))
        {
            inputNorm = nn.LayerNorm(width);
            for (int i = 0; i < depth; i++) blocks.Add(new SequenceParallelBlock(width, heads, hidden));
            norm = nn.LayerNorm(width);
            up = nn.Linear(width, hidden);
            down = nn.Linear(hidden, width);
            RegisterComponents();
        }

        public override Tensor forward(Tensor x)
        {
            var h = inputNorm.forward(x);
            foreach (var block in blocks) h = block.forward(h);
            return down.forward(nn.functional.gelu(up.forward(norm.forward(h))));
        }
    }

    /// <summary>The plain single-device form of <see cref="SequenceParallelStack"/> (attention written out in its blocks), with the same parameter names.</summary>
    public sealed class PlainSequenceParallelStack : nn.Module<Tensor, Tensor>
    {
        private readonly LayerNorm inputNorm;
        private readonly ModuleList<ReferenceTransformerBlock> blocks = new();
        private readonly LayerNorm norm;
        private readonly Linear up;
        private readonly Linear down;

        public PlainSequenceParallelStack(int depth, long width, long heads, long hidden) : base(nameof(PlainSequenceParallelStack))
        {
            inputNorm = nn.LayerNorm(width);
            for (int i = 0; i < depth; i++) blocks.Add(new ReferenceTransformerBlock(width, heads, hidden));
            norm = nn.LayerNorm(width);
            up = nn.Linear(width, hidden);
            down = nn.Linear(hidden, width);
            RegisterComponents();
        }

        public override Tensor forward(Tensor x)
        {
            var h = inputNorm.forward(x);
            foreach (var block in blocks) h = block.forward(h);
            return down.forward(nn.functional.gelu(up.forward(norm.forward(h))));
        }
    }
}
