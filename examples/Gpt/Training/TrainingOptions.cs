using ModelParallel.Examples.Gpt.Model;

namespace ModelParallel.Examples.Gpt.Training
{
    /// <summary>Everything a training run needs besides the data.</summary>
    public sealed record TrainingOptions(GptConfig Config, MeshShape Mesh)
    {
        public string Schedule { get; init; } = "1f1b";
        public int Microbatches { get; init; } = 2;
        public int Steps { get; init; } = 100;
        /// <summary>Sequences per dp rank per step (split into <see cref="Microbatches"/>).</summary>
        public long Batch { get; init; } = 8;
        public double LearningRate { get; init; } = 3e-3;
        public int WarmupSteps { get; init; } = 10;
        public int ValidateEvery { get; init; } = 25;
        public int ValidationBatches { get; init; } = 4;
        public int Seed { get; init; } = 1;
        /// <summary>The vocabulary the embedding and head are built with; by default the config's padded for the mesh's tp.</summary>
        public long? BuiltVocabulary { get; init; }

        /// <summary>Where checkpoints go and are resumed from; null: none.</summary>
        public string? Checkpoint { get; init; }

        /// <summary>Steps between checkpoints (and one at the end); 0: never.</summary>
        public int SaveEvery { get; init; }

        /// <summary>Continue from the newest checkpoint in <see cref="Checkpoint"/>, on this mesh whatever mesh saved it.</summary>
        public bool Resume { get; init; }

        /// <summary>Sequences per step over all dp replicas: the same global batch gives the same batches on any mesh.</summary>
        public long GlobalBatch => Batch * Mesh.Dp;

        /// <summary>Chunks per pp rank: 2 for the interleaved schedule, else 1.</summary>
        public int VirtualStages => Schedule == "interleaved" ? 2 : 1;

        public long Vocabulary => BuiltVocabulary ?? Config.PaddedVocabulary(Mesh.Tp);

        /// <summary>The learning rate at <paramref name="step"/>: linear warm-up, then cosine decay to a tenth.</summary>
        public double LearningRateAt(int step)
        {
            if (step < WarmupSteps) return LearningRate * (step + 1) / WarmupSteps;
            double progress = (double)(step - WarmupSteps) / System.Math.Max(1, Steps - WarmupSteps);
            return LearningRate * (0.1 + 0.9 * 0.5 * (1 + System.Math.Cos(System.Math.PI * progress)));
        }
    }

    /// <summary>What one step measured, reported by rank 0.</summary>
    public sealed record StepReport(int Step, double TrainLoss, double? ValidationLoss, double Seconds, double TokensPerSecond, double ModelFlopsPerSecond, long[] RankBytes, long[] RankPeakResidentBytes);
}
