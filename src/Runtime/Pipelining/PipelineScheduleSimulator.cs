using System;
using System.Collections.Generic;
using System.Linq;

namespace ModelParallel.Pipelining
{
    /// <summary>
    /// Runs a schedule on paper: every forward of one chunk costs <c>forward</c>, every backward <c>backward</c>,
    /// communication nothing; sends are buffered and a receive waits for its send. The result is the timeline
    /// the schedule would have on ideal hardware, so its bubble is the schedule's own.
    /// </summary>
    public static class PipelineScheduleSimulator
    {
        /// <summary>The simulated timeline (times in the same unit as the costs). The schedule must be valid.</summary>
        public static PipelineTrace Simulate(PipelineSchedule schedule, double forward = 1, double backward = 2) =>
            Simulate(schedule, (a, _, _) => a.Kind == PipelineActionKind.Forward ? forward : backward);

        /// <summary>
        /// The timeline with a cost per compute action, given its rank and index in that rank's list (for example the
        /// durations a real run measured), communication free. Compared with the measured timeline, the difference
        /// is what communication and the executor's own work cost.
        /// </summary>
        public static PipelineTrace Simulate(PipelineSchedule schedule, Func<PipelineAction, int, int, double> cost)
        {
            PipelineScheduleValidator.Validate(schedule);
            int p = schedule.Stages;
            var clock = new double[p];
            var position = new int[p];
            var sent = new Dictionary<(int From, int To, int Tag), Queue<double>>();
            var events = new List<PipelineEvent>();
            bool progress = true;
            while (progress)
            {
                progress = false;
                for (int r = 0; r < p; r++)
                {
                    while (position[r] < schedule.Ranks[r].Count)
                    {
                        var a = schedule.Ranks[r][position[r]];
                        double start = clock[r], end = start;
                        switch (a.Kind)
                        {
                            case PipelineActionKind.Forward or PipelineActionKind.Backward: end = start + cost(a, r, position[r]); break;
                            case PipelineActionKind.SendActivation or PipelineActionKind.SendGradient:
                                var key = (r, a.Peer, a.Tag);
                                if (!sent.TryGetValue(key, out var queue)) sent[key] = queue = new();
                                queue.Enqueue(start);
                                break;
                            default:
                                if (!sent.TryGetValue((a.Peer, r, a.Tag), out var waiting) || waiting.Count == 0) goto blocked;
                                end = Math.Max(start, waiting.Dequeue());
                                start = end;
                                break;
                        }
                        events.Add(new PipelineEvent(r, a.Kind, a.Microbatch, a.Stage, start, end));
                        clock[r] = end;
                        position[r]++;
                        progress = true;
                    }
                blocked:;
                }
            }
            return PipelineTrace.From(events);
        }
    }
}
