using System;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace ModelParallel.Tests.Models
{
    /// <summary>
    /// The independent single-device reference for the example's TransformerBlock: plain TorchSharp, the same
    /// parameter names, attention written out as softmax(q kᵀ / √d + causal mask) v instead of the fused kernel.
    /// </summary>
    public sealed class ReferenceTransformerBlock : nn.Module<Tensor, Tensor>
    {
        private readonly LayerNorm attentionNorm;
        private readonly Linear qkv;
        private readonly Linear projection;
        private readonly LayerNorm mlpNorm;
        private readonly Linear up;
        private readonly Linear down;
        private readonly long heads;

        public ReferenceTransformerBlock(long width, long heads, long hidden) : base(nameof(ReferenceTransformerBlock))
        {
            attentionNorm = nn.LayerNorm(width);
            qkv = nn.Linear(width, 3 * width, hasBias: false);
            projection = nn.Linear(width, width);
            mlpNorm = nn.LayerNorm(width);
            up = nn.Linear(width, hidden);
            down = nn.Linear(hidden, width);
            this.heads = heads;
            RegisterComponents();
        }

        public override Tensor forward(Tensor x)
        {
            long b = x.shape[0], t = x.shape[1], d = x.shape[2], size = d / heads;
            var h = attentionNorm.forward(x);
            var all = qkv.forward(h);
            Tensor Heads(long part) => all.narrow(-1, part * d, d).reshape(b, t, heads, size).permute(0, 2, 1, 3);
            var (q, k, v) = (Heads(0), Heads(1), Heads(2));
            var scores = q.matmul(k.transpose(-2, -1)) / Math.Sqrt(size);
            var future = torch.ones(t, t, dtype: torch.@bool).triu(1);
            var attended = scores.masked_fill(future, double.NegativeInfinity).softmax(-1).matmul(v);
            x = x + projection.forward(attended.permute(0, 2, 1, 3).reshape(b, t, d));
            return x + down.forward(nn.functional.gelu(up.forward(mlpNorm.forward(x))));
        }
    }

    /// <summary>A stack of blocks: the reference (plain) or the partitioned example block.</summary>
    public sealed class BlockStack<TBlock> : nn.Module<Tensor, Tensor> where TBlock : nn.Module<Tensor, Tensor>
    {
        private readonly ModuleList<TBlock> blocks = new();

        public BlockStack(int depth, Func<TBlock> block) : base("BlockStack")
        {
            for (int i = 0; i < depth; i++) blocks.Add(block());
            RegisterComponents();
        }

        public override Tensor forward(Tensor x)
        {
#pragma warning disable MP0021 // the stack holds reference blocks or whole-output [ParallelModule] blocks, never a sequence-parallel one
            foreach (var block in blocks) x = block.forward(x);
#pragma warning restore MP0021
            return x;
        }
    }
}
