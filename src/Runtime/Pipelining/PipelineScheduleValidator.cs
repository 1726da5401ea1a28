using System;
using System.Collections.Generic;
using System.Linq;

namespace ModelParallel.Pipelining
{
    /// <summary>
    /// Proves from the action lists alone that a schedule runs to the end: every forward and backward of every
    /// (micro-batch, virtual stage) happens once, on its rank, after its inputs; every send has its receive with
    /// the same micro-batch, stage and shape; and no rank waits in a cycle. Sends are buffered (they never
    /// block); a receive blocks until the matching send has run. The check simulates the ranks with that rule,
    /// so a schedule it accepts cannot hang the executor.
    /// </summary>
    public static class PipelineScheduleValidator
    {
        /// <summary>Throws <see cref="InvalidPipelineScheduleException"/> naming the ranks and actions at fault.</summary>
        public static void Validate(PipelineSchedule schedule)
        {
            var problems = Problems(schedule);
            if (problems.Count > 0)
                throw new InvalidPipelineScheduleException($"Pipeline schedule '{schedule.Name}' (pp={schedule.Stages}, m={schedule.Microbatches}, v={schedule.VirtualStages}) is invalid:\n  " + string.Join("\n  ", problems));
        }

        /// <summary>Every problem found, empty for a valid schedule.</summary>
        public static IReadOnlyList<string> Problems(PipelineSchedule schedule)
        {
            var problems = new List<string>();
            int p = schedule.Stages, stages = p * schedule.VirtualStages;
            CheckPlacement(schedule, stages, problems);
            if (problems.Count > 0) return problems;

            var position = new int[p];
            var channels = new Dictionary<(int From, int To, int Tag), Queue<(int Rank, int Index, PipelineAction Action)>>();
            var done = new HashSet<(PipelineActionKind, int, int)>[p];
            for (int r = 0; r < p; r++) done[r] = new();
            bool progress = true;
            while (progress)
            {
                progress = false;
                for (int r = 0; r < p; r++)
                {
                    while (position[r] < schedule.Ranks[r].Count)
                    {
                        var action = schedule.Ranks[r][position[r]];
                        if (action.Kind is PipelineActionKind.ReceiveActivation or PipelineActionKind.ReceiveGradient)
                        {
                            if (!channels.TryGetValue((action.Peer, r, action.Tag), out var queue) || queue.Count == 0) break;
                            var (sender, index, sent) = queue.Dequeue();
                            if (!Matches(sent, action))
                            {
                                problems.Add($"rank {r} action #{position[r]} ({action}) would get the message of rank {sender} action #{index} ({sent}): the micro-batch, stage or shape differ.");
                                return problems;
                            }
                        }
                        else if (Missing(action, stages, done[r]) is { } missing)
                        {
                            problems.Add($"rank {r} action #{position[r]} ({action}) runs before {missing}.");
                            return problems;
                        }
                        else if (action.Kind is PipelineActionKind.SendActivation or PipelineActionKind.SendGradient)
                        {
                            var key = (r, action.Peer, action.Tag);
                            if (!channels.TryGetValue(key, out var queue)) channels[key] = queue = new();
                            queue.Enqueue((r, position[r], action));
                        }
                        done[r].Add((action.Kind, action.Microbatch, action.Stage));
                        position[r]++;
                        progress = true;
                    }
                }
            }

            var blocked = Enumerable.Range(0, p).Where(r => position[r] < schedule.Ranks[r].Count).ToList();
            if (blocked.Count > 0)
            {
                problems.Add("the ranks wait for each other forever (no send can satisfy any of these receives): "
                    + string.Join("; ", blocked.Select(r => $"rank {r} at action #{position[r]} ({schedule.Ranks[r][position[r]]})")));
                return problems;
            }
            foreach (var ((from, to, _), queue) in channels)
            {
                foreach (var (_, index, action) in queue)
                    problems.Add($"rank {from} action #{index} ({action}) is never received by rank {to}.");
            }
            return problems;
        }

        /// <summary>Each (micro-batch, stage) has one forward and one backward, on the rank that holds the stage.</summary>
        private static void CheckPlacement(PipelineSchedule schedule, int stages, List<string> problems)
        {
            int p = schedule.Stages;
            for (int r = 0; r < p; r++)
            {
                foreach (var (action, index) in schedule.Ranks[r].Select((a, i) => (a, i)))
                {
                    if (action.Stage < 0 || action.Stage >= stages || action.Stage % p != r || action.Chunk != action.Stage / p)
                        problems.Add($"rank {r} action #{index} ({action}) names stage {action.Stage} chunk {action.Chunk}, which rank {r} does not hold.");
                    else if (action.Microbatch < 0 || action.Microbatch >= schedule.Microbatches)
                        problems.Add($"rank {r} action #{index} ({action}) names micro-batch {action.Microbatch} of {schedule.Microbatches}.");
                    else if (action.IsCommunication && action.Peer != Expected(action, p))
                        problems.Add($"rank {r} action #{index} ({action}) talks to rank {action.Peer}; the neighbouring stage is on rank {Expected(action, p)}.");
                }
            }
            if (problems.Count > 0) return;
            foreach (var kind in new[] { PipelineActionKind.Forward, PipelineActionKind.Backward })
            {
                for (int s = 0; s < stages; s++)
                {
                    for (int i = 0; i < schedule.Microbatches; i++)
                    {
                        int count = schedule.Ranks[s % p].Count(a => a.Kind == kind && a.Stage == s && a.Microbatch == i);
                        if (count != 1) problems.Add($"rank {s % p} runs {kind} of micro-batch {i} on stage {s} {count} times (expected once).");
                    }
                }
            }
        }

        private static int Expected(PipelineAction action, int p) =>
            action.Kind is PipelineActionKind.SendActivation or PipelineActionKind.ReceiveGradient
                ? (action.Stage + 1) % p
                : (action.Stage + p - 1) % p;

        private static bool Matches(PipelineAction sent, PipelineAction received) =>
            sent.Microbatch == received.Microbatch && sent.Shape.SequenceEqual(received.Shape) && (sent.Kind, received.Kind) switch
            {
                (PipelineActionKind.SendActivation, PipelineActionKind.ReceiveActivation) => received.Stage == sent.Stage + 1,
                (PipelineActionKind.SendGradient, PipelineActionKind.ReceiveGradient) => received.Stage == sent.Stage - 1,
                _ => false,
            };

        /// <summary>What must have run on this rank before the action, if it has not.</summary>
        private static string? Missing(PipelineAction a, int stages, HashSet<(PipelineActionKind, int, int)> done)
        {
            bool Has(PipelineActionKind kind, int stage) => done.Contains((kind, a.Microbatch, stage));
            return a.Kind switch
            {
                PipelineActionKind.Forward when a.Stage > 0 && !Has(PipelineActionKind.ReceiveActivation, a.Stage) => $"receiving its input activation (micro-batch {a.Microbatch}, stage {a.Stage})",
                PipelineActionKind.Backward when !Has(PipelineActionKind.Forward, a.Stage) => $"its forward F{a.Microbatch}(s{a.Stage})",
                PipelineActionKind.Backward when a.Stage < stages - 1 && !Has(PipelineActionKind.ReceiveGradient, a.Stage) => $"receiving its output gradient (micro-batch {a.Microbatch}, stage {a.Stage})",
                PipelineActionKind.SendActivation when !Has(PipelineActionKind.Forward, a.Stage) => $"the forward that produces it, F{a.Microbatch}(s{a.Stage})",
                PipelineActionKind.SendGradient when !Has(PipelineActionKind.Backward, a.Stage) => $"the backward that produces it, B{a.Microbatch}(s{a.Stage})",
                _ => null,
            };
        }
    }
}
