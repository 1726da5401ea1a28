using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace ModelParallel.Tests.Models
{
    /// <summary>
    /// A vocabulary-parallel embedding, a partitioned MLP block, a ColumnParallel head giving logits sharded on the
    /// vocabulary, and cross-entropy over them, all in one forward that returns the loss. Tied, the head's weight is the
    /// embedding's (GPT-2's tie), shard by shard.
    /// </summary>
    [ParallelModule]
    public sealed partial class TinyLanguageModel : nn.Module<Tensor, Tensor, Tensor>
    {
        [VocabParallel] private readonly Embedding embed;
        private readonly TestBlock block;
        [ColumnParallel] private readonly Linear head;
        private readonly long vocab;
        private readonly double labelSmoothing;
        private readonly long ignoreIndex;

        public TinyLanguageModel(long vocab, long width, long hidden, double labelSmoothing = 0, long ignoreIndex = -100, bool tied = false) : base(nameof(TinyLanguageModel))
        {
            this.labelSmoothing = labelSmoothing;
            this.ignoreIndex = ignoreIndex;
            embed = nn.Embedding(vocab, width);
            block = new TestBlock(width, hidden, bias: true);
            head = nn.Linear(width, vocab, hasBias: false);
            if (tied) head.weight = embed.weight!;
            this.vocab = vocab;
            RegisterComponents();
        }

        public override Tensor forward(Tensor ids, Tensor targets)
        {
            var logits = head.forward(block.forward(embed.forward(ids)));
            return nn.functional.cross_entropy(logits.view(-1, vocab), targets.view(-1), ignore_index: ignoreIndex, label_smoothing: labelSmoothing);
        }
    }

    /// <summary>The plain form of <see cref="TinyLanguageModel"/>, with the same parameter names.</summary>
    public sealed class ReferenceLanguageModel : nn.Module<Tensor, Tensor, Tensor>
    {
        private readonly Embedding embed;
        private readonly ReferenceBlock block;
        private readonly Linear head;
        private readonly long vocab;
        private readonly double labelSmoothing;
        private readonly long ignoreIndex;

        public ReferenceLanguageModel(long vocab, long width, long hidden, double labelSmoothing = 0, long ignoreIndex = -100, bool tied = false) : base(nameof(ReferenceLanguageModel))
        {
            this.labelSmoothing = labelSmoothing;
            this.ignoreIndex = ignoreIndex;
            embed = nn.Embedding(vocab, width);
            block = new ReferenceBlock(width, hidden, bias: true);
            head = nn.Linear(width, vocab, hasBias: false);
            if (tied) head.weight = embed.weight!;
            this.vocab = vocab;
            RegisterComponents();
        }

        public override Tensor forward(Tensor ids, Tensor targets) =>
            nn.functional.cross_entropy(head.forward(block.forward(embed.forward(ids))).view(-1, vocab), targets.view(-1), ignore_index: ignoreIndex, label_smoothing: labelSmoothing);
    }
}
