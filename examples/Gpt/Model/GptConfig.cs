using System;

namespace ModelParallel.Examples.Gpt.Model
{
    /// <summary>The sizes of a GPT. <see cref="Vocabulary"/> is the tokenizer's; the model's embedding and head use <see cref="PaddedVocabulary"/>.</summary>
    public sealed record GptConfig(long Vocabulary, long Width, int Depth, long Heads, long Context)
    {
        /// <summary>Megatron pads the vocabulary to a multiple of 128 × tp, so every tp shard of the embedding and head is equal and aligned.</summary>
        public long PaddedVocabulary(int tp) => PadVocabulary(Vocabulary, tp);

        /// <summary><paramref name="vocabulary"/> rounded up to a multiple of 128 × <paramref name="tp"/>.</summary>
        public static long PadVocabulary(long vocabulary, int tp)
        {
            long multiple = 128L * tp;
            return (vocabulary + multiple - 1) / multiple * multiple;
        }

        /// <summary>The MLP's hidden size: four times the width, as in GPT-2.</summary>
        public long Hidden => 4 * Width;

        /// <summary>Parameters of the model at single-device semantics (padded vocabulary, as built).</summary>
        public long Parameters(int tp)
        {
            long v = PaddedVocabulary(tp), w = Width;
            long block = 2 * 2 * w + 3 * w * w + (w * w + w) + (w * Hidden + Hidden) + (Hidden * w + w);
            return v * w + Context * w + Depth * block + 2 * w + w * v;
        }

        /// <summary>
        /// Model FLOPs per trained token (forward and backward, as PaLM's appendix counts them): 6 per weight a token meets
        /// in a matrix product, plus attention's 12 × depth × width × context.
        /// </summary>
        public double FlopsPerToken(int tp)
        {
            long w = Width, matrixWeights = Depth * (4 * w * w + 2 * w * Hidden) + w * PaddedVocabulary(tp);
            return 6.0 * matrixWeights + 12.0 * Depth * w * Context;
        }

        /// <summary>Checks the sizes against each other and the mesh; the message names the option to change.</summary>
        public void Check(int tp, int pp, int virtualStages)
        {
            if (Width % Heads != 0) throw new UsageException($"--width {Width} must be divisible by --heads {Heads}.");
            if (Heads % tp != 0) throw new UsageException($"--heads {Heads} must be divisible by --tp {tp}: each tp rank runs whole heads.");
            if (Depth < pp * virtualStages) throw new UsageException($"--depth {Depth} gives fewer blocks than pipeline stages (--pp {pp} × {virtualStages} chunk(s) per rank).");
            if (Depth % (pp * virtualStages) != 0) throw new UsageException($"--depth {Depth} must be divisible by --pp {pp} × {virtualStages} chunk(s) per rank, so every stage runs the same number of blocks.");
        }
    }
}
