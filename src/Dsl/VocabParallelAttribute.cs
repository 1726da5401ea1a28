using System;

namespace ModelParallel
{
    /// <summary>
    /// An <c>Embedding</c> field whose rows (the vocabulary) are split over the tensor-parallel axis. Input ids
    /// Replicate; each rank looks up the ids in its range (zeros elsewhere), giving a partial sum that is all-reduced
    /// to Replicate. Pair it with a ColumnParallel head and <c>cross_entropy</c> in the same forward: the generator
    /// computes the loss over the vocabulary-sharded logits without gathering them.
    /// </summary>
    [AttributeUsage(AttributeTargets.Field, Inherited = false)]
    public sealed class VocabParallelAttribute : Attribute
    {
    }
}
