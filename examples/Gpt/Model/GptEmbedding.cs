using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace ModelParallel.Examples.Gpt.Model
{
    /// <summary>
    /// Token embedding (VocabParallel: each tp rank holds its rows of the vocabulary; the looked-up vectors are
    /// all-reduced) plus learned positions (replicated). The first pipeline stage runs it.
    /// </summary>
    [ParallelModule]
    public sealed partial class GptEmbedding : nn.Module<Tensor, Tensor>
    {
        [VocabParallel] private readonly Embedding tokens;
        private readonly Embedding positions;

        public GptEmbedding(long vocabulary, long width, long context) : base(nameof(GptEmbedding))
        {
            tokens = nn.Embedding(vocabulary, width);
            positions = nn.Embedding(context, width);
            RegisterComponents();
        }

        public override Tensor forward(Tensor ids) =>
            tokens.forward(ids) + positions.forward(torch.arange(ids.shape[1], device: ids.device));
    }
}
