using System;
using System.Collections.Generic;
using System.Linq;

namespace ModelParallel.Pipelining
{
    /// <summary>
    /// Which virtual stage each block of a [PipelineStages] list belongs to. Virtual stage s lives on pp rank
    /// s mod pp as its chunk s / pp; with one chunk per rank, stage s is rank s.
    /// </summary>
    public sealed class PipelineLayout
    {
        private readonly int[] stageOfBlock;

        /// <summary>Splits <paramref name="blocks"/> over pp × <paramref name="virtualStages"/> stages, evenly (earlier stages take the remainder) or by <paramref name="split"/>.</summary>
        public PipelineLayout(string layer, int blocks, int pp, int virtualStages, IReadOnlyList<int>? split = null)
        {
            int stages = pp * virtualStages;
            Stages = pp;
            VirtualStages = virtualStages;
            Blocks = blocks;
            var counts = split is { Count: > 0 } ? split.ToArray() : Even(blocks, stages);
            if (counts.Length != stages)
                throw new PartitionException($"'{layer}': the split [{string.Join(", ", counts)}] has {counts.Length} entries; the mesh has pp = {pp} × {virtualStages} virtual stage(s) = {stages} stages.");
            if (counts.Sum() != blocks || counts.Any(c => c < 0))
                throw new PartitionException($"'{layer}': the split [{string.Join(", ", counts)}] covers {counts.Sum()} blocks; the list has {blocks}.");
            if (blocks < stages)
                throw new PartitionException($"'{layer}' has {blocks} blocks, fewer than the {stages} pipeline stages (pp = {pp} × {virtualStages} virtual): every stage needs at least one block.");
            stageOfBlock = counts.SelectMany((count, stage) => Enumerable.Repeat(stage, count)).ToArray();
            Counts = counts;
        }

        /// <summary>Pipeline ranks.</summary>
        public int Stages { get; }

        /// <summary>Chunks per rank.</summary>
        public int VirtualStages { get; }

        /// <summary>Blocks in the list.</summary>
        public int Blocks { get; }

        /// <summary>Blocks per virtual stage.</summary>
        public IReadOnlyList<int> Counts { get; }

        /// <summary>The virtual stage of a block.</summary>
        public int StageOf(int block) => stageOfBlock[block];

        /// <summary>The pp rank holding a block.</summary>
        public int RankOf(int block) => stageOfBlock[block] % Stages;

        /// <summary>The chunk (on its rank) a block belongs to.</summary>
        public int ChunkOf(int block) => stageOfBlock[block] / Stages;

        private static int[] Even(int blocks, int stages) =>
            Enumerable.Range(0, stages).Select(s => blocks / stages + (s < blocks % stages ? 1 : 0)).ToArray();
    }
}
