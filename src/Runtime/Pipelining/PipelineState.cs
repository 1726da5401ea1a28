using System.Collections.Generic;

namespace ModelParallel.Pipelining
{
    /// <summary>One rank's pipeline state: what it is building, which chunk each of its blocks belongs to, what runs now.</summary>
    internal sealed class PipelineState(int virtualStages)
    {
        private readonly Dictionary<object, int> chunkOfBlock = new(ReferenceEqualityComparer.Instance);

        /// <summary>Chunks per rank, from RunOptions.</summary>
        public int VirtualStages { get; } = virtualStages;

        /// <summary>Greater than zero while a block this rank does not hold is being built (its layers go to the meta device).</summary>
        public int OffStageDepth { get; set; }

        /// <summary>The split of the last [PipelineStages] list built on this rank.</summary>
        public PipelineLayout? Layout { get; set; }

        /// <summary>True while the executor runs a forward or backward of <see cref="CurrentStage"/>.</summary>
        public bool Running { get; set; }

        /// <summary>The virtual stage being run.</summary>
        public int CurrentStage { get; set; }

        /// <summary>Records a block: its chunk on this rank, or -1 when another rank holds it.</summary>
        public void Record(object block, int chunk) => chunkOfBlock[block] = chunk;

        /// <summary>The chunk of a recorded block; null for a block built outside a [PipelineStages] list.</summary>
        public int? ChunkOf(object block) => chunkOfBlock.TryGetValue(block, out int chunk) ? chunk : null;
    }
}
