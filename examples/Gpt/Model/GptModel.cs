using System.Linq;
using TorchSharp;
using ModelParallel.Examples.Transformer;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace ModelParallel.Examples.Gpt.Model
{
    /// <summary>
    /// A GPT-2-style decoder at single-device semantics: token and position embeddings, pre-norm blocks, a final
    /// LayerNorm and the LM head. Attributes partition it: the embedding on the first pipeline stage, the blocks split
    /// over the pp ranks, the norm and head on the last; the head is ColumnParallel over the (padded) vocabulary, so
    /// forward returns logits sharded on the vocabulary (S(-1)), which VocabParallelLoss reduces without gathering them.
    /// </summary>
    [ParallelModule]
    public sealed partial class GptModel : nn.Module<Tensor, Tensor>
    {
        [FirstStage] private readonly GptEmbedding embedding;
        [PipelineStages] private readonly ModuleList<TransformerBlock> blocks;
        [LastStage] private readonly LayerNorm norm;
        [LastStage, ColumnParallel] private readonly Linear head;

        /// <param name="config">The sizes.</param>
        /// <param name="vocabulary">The vocabulary the embedding and head are built with: the padded one.</param>
        public GptModel(GptConfig config, long vocabulary) : base(nameof(GptModel))
        {
            embedding = new GptEmbedding(vocabulary, config.Width, config.Context);
            blocks = nn.ModuleList(Enumerable.Range(0, config.Depth).Select(_ => new TransformerBlock(config.Width, config.Heads, config.Hidden)).ToArray());
            norm = nn.LayerNorm(config.Width);
            head = nn.Linear(config.Width, vocabulary, hasBias: false);
            RegisterComponents();
        }

        public override Tensor forward(Tensor ids)
        {
            var x = embedding.forward(ids);
            foreach (var block in blocks) x = block.forward(x);
            return head.forward(norm.forward(x));
        }
    }
}
