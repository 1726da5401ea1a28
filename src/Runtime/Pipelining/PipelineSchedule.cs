using System;
using System.Collections.Generic;
using System.Linq;

namespace ModelParallel.Pipelining
{
    /// <summary>
    /// A pipeline schedule as data: for every pp rank, the list of actions it runs in one training step.
    /// Built by <see cref="GPipe"/>, <see cref="OneForwardOneBackward"/> or <see cref="Interleaved"/>, checked by
    /// <see cref="PipelineScheduleValidator"/>, run by <see cref="PipelineExecutor"/>, drawn by <see cref="PipelineTrace"/>.
    /// </summary>
    public sealed class PipelineSchedule
    {
        /// <summary>A schedule from explicit per-rank action lists (for example a hand-written or edited one).</summary>
        public PipelineSchedule(string name, int stages, int microbatches, int virtualStages, IReadOnlyList<IReadOnlyList<PipelineAction>> ranks)
        {
            if (ranks.Count != stages) throw new ArgumentException($"Schedule '{name}' has {ranks.Count} action lists for {stages} pipeline ranks.", nameof(ranks));
            Name = name;
            Stages = stages;
            Microbatches = microbatches;
            VirtualStages = virtualStages;
            Ranks = ranks;
        }

        /// <summary>gpipe, 1f1b or interleaved.</summary>
        public string Name { get; }

        /// <summary>Pipeline ranks p.</summary>
        public int Stages { get; }

        /// <summary>Micro-batches per step m.</summary>
        public int Microbatches { get; }

        /// <summary>Model chunks per rank v (1 except for the interleaved schedule).</summary>
        public int VirtualStages { get; }

        /// <summary>The actions of each pp rank, in order.</summary>
        public IReadOnlyList<IReadOnlyList<PipelineAction>> Ranks { get; }

        /// <summary>The schedule named by <paramref name="name"/> (gpipe, 1f1b, interleaved).</summary>
        public static PipelineSchedule Create(string name, int stages, int microbatches, int virtualStages = 1, IReadOnlyList<long>? shape = null) =>
            name.ToLowerInvariant() switch
            {
                "gpipe" => GPipe(stages, microbatches, shape),
                "1f1b" => OneForwardOneBackward(stages, microbatches, shape),
                "interleaved" => Interleaved(stages, microbatches, virtualStages, shape),
                _ => throw new ArgumentException($"Unknown pipeline schedule '{name}': use gpipe, 1f1b or interleaved.", nameof(name)),
            };

        /// <summary>GPipe: every forward, then every backward. Peak: m micro-batches in flight per rank.</summary>
        public static PipelineSchedule GPipe(int stages, int microbatches, IReadOnlyList<long>? shape = null)
        {
            Check(stages, microbatches, 1);
            var order = Enumerable.Range(0, stages).Select(_ =>
                Enumerable.Range(0, microbatches).Select(i => (true, i, 0))
                    .Concat(Enumerable.Range(0, microbatches).Select(i => (false, i, 0))).ToList()).ToList();
            return Build("gpipe", stages, microbatches, 1, order, shape);
        }

        /// <summary>1F1B: p − r − 1 warm-up forwards, then one forward and one backward in turn. Peak: at most p micro-batches in flight.</summary>
        public static PipelineSchedule OneForwardOneBackward(int stages, int microbatches, IReadOnlyList<long>? shape = null)
        {
            Check(stages, microbatches, 1);
            var order = new List<List<(bool, int, int)>>();
            for (int r = 0; r < stages; r++)
            {
                int warmup = Math.Min(stages - r - 1, microbatches);
                var units = new List<(bool, int, int)>();
                for (int i = 0; i < warmup; i++) units.Add((true, i, 0));
                for (int i = 0; i < microbatches - warmup; i++)
                {
                    units.Add((true, warmup + i, 0));
                    units.Add((false, i, 0));
                }
                for (int i = microbatches - warmup; i < microbatches; i++) units.Add((false, i, 0));
                order.Add(units);
            }
            return Build("1f1b", stages, microbatches, 1, order, shape);
        }

        /// <summary>
        /// Interleaved 1F1B (Megatron's virtual pipeline): each rank holds <paramref name="virtualStages"/> chunks;
        /// forwards go round the chunks p micro-batches at a time; m must be a multiple of p.
        /// </summary>
        public static PipelineSchedule Interleaved(int stages, int microbatches, int virtualStages, IReadOnlyList<long>? shape = null)
        {
            Check(stages, microbatches, virtualStages);
            if (microbatches % stages != 0)
                throw new ArgumentException($"The interleaved schedule needs micro-batches ({microbatches}) to be a multiple of pp ({stages}).", nameof(microbatches));
            int units = microbatches * virtualStages;
            (int Microbatch, int Chunk) Unit(int k, bool forward)
            {
                int group = k / (stages * virtualStages), chunk = k / stages % virtualStages;
                return (group * stages + k % stages, forward ? chunk : virtualStages - 1 - chunk);
            }
            var order = new List<List<(bool, int, int)>>();
            for (int r = 0; r < stages; r++)
            {
                int warmup = microbatches == stages ? units : Math.Min(units, (stages - r - 1) * 2 + (virtualStages - 1) * stages);
                var list = new List<(bool, int, int)>();
                for (int k = 0; k < warmup; k++) { var (i, c) = Unit(k, true); list.Add((true, i, c)); }
                for (int k = 0; k < units - warmup; k++)
                {
                    var (fi, fc) = Unit(warmup + k, true);
                    list.Add((true, fi, fc));
                    var (bi, bc) = Unit(k, false);
                    list.Add((false, bi, bc));
                }
                for (int k = units - warmup; k < units; k++) { var (i, c) = Unit(k, false); list.Add((false, i, c)); }
                order.Add(list);
            }
            return Build("interleaved", stages, microbatches, virtualStages, order, shape);
        }

        /// <summary>Adds to each compute unit the receive before it and the send after it.</summary>
        private static PipelineSchedule Build(string name, int stages, int microbatches, int virtualStages,
            List<List<(bool Forward, int Microbatch, int Chunk)>> order, IReadOnlyList<long>? shape)
        {
            var none = (IReadOnlyList<long>)Array.Empty<long>();
            var s = shape ?? none;
            int last = stages * virtualStages - 1;
            var ranks = new List<IReadOnlyList<PipelineAction>>();
            for (int r = 0; r < stages; r++)
            {
                var actions = new List<PipelineAction>();
                int next = (r + 1) % stages, previous = (r + stages - 1) % stages;
                foreach (var (forward, i, c) in order[r])
                {
                    int stage = c * stages + r;
                    if (forward)
                    {
                        if (stage > 0) actions.Add(new(PipelineActionKind.ReceiveActivation, i, stage, c, previous, s));
                        actions.Add(new(PipelineActionKind.Forward, i, stage, c, -1, none));
                        if (stage < last) actions.Add(new(PipelineActionKind.SendActivation, i, stage, c, next, s));
                    }
                    else
                    {
                        if (stage < last) actions.Add(new(PipelineActionKind.ReceiveGradient, i, stage, c, next, s));
                        actions.Add(new(PipelineActionKind.Backward, i, stage, c, -1, none));
                        if (stage > 0) actions.Add(new(PipelineActionKind.SendGradient, i, stage, c, previous, s));
                    }
                }
                ranks.Add(actions);
            }
            return new PipelineSchedule(name, stages, microbatches, virtualStages, ranks);
        }

        private static void Check(int stages, int microbatches, int virtualStages)
        {
            if (stages < 1) throw new ArgumentOutOfRangeException(nameof(stages), $"A pipeline needs at least one stage; got {stages}.");
            if (microbatches < 1) throw new ArgumentOutOfRangeException(nameof(microbatches), $"A pipeline step needs at least one micro-batch; got {microbatches}.");
            if (virtualStages < 1) throw new ArgumentOutOfRangeException(nameof(virtualStages), $"Each rank needs at least one chunk; got {virtualStages} virtual stages.");
        }
    }
}
