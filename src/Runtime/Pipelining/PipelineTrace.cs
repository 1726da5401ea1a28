using System;
using System.Collections.Generic;
using System.Globalization;
using System.IO;
using System.Linq;
using System.Text;
using TorchSharp;

namespace ModelParallel.Pipelining
{
    /// <summary>
    /// The timeline of one pipeline step on all ranks: gathered to world rank 0, written as a Chrome trace
    /// (JSON; opens in Perfetto or chrome://tracing) with one track per rank, drawn as SVG, and summarised
    /// as the bubble fraction.
    /// </summary>
    public sealed class PipelineTrace
    {
        private PipelineTrace(IReadOnlyList<PipelineEvent> events) => Events = events;

        /// <summary>Every rank's events, ordered by rank and start.</summary>
        public IReadOnlyList<PipelineEvent> Events { get; }

        /// <summary>The trace of the events given (for example from a schedule simulation).</summary>
        public static PipelineTrace From(IEnumerable<PipelineEvent> events) => new(events.OrderBy(e => e.Rank).ThenBy(e => e.Start).ToList());

        /// <summary>
        /// Gathers <paramref name="executor"/>'s last step from every rank of the world to world rank 0.
        /// Every rank must call it; rank 0 gets the trace, the others null.
        /// </summary>
        public static PipelineTrace? Gather(PipelineExecutor executor)
        {
            var context = RankContext.Current ?? throw new InvalidOperationException("PipelineTrace.Gather must be called inside Ranks.Run.");
            var world = context.World;
            var mine = executor.Events;
            if (world.Rank != 0)
            {
                using var count = torch.tensor(new long[] { mine.Count });
                world.Send(count, 0, Tag);
                if (mine.Count > 0)
                {
                    using var packed = torch.tensor(mine.SelectMany(e => new[] { e.Rank, (double)e.Kind, e.Microbatch, e.Stage, e.Start, e.End }).ToArray()).reshape(mine.Count, 6);
                    world.Send(packed, 0, Tag);
                }
                return null;
            }
            var all = new List<PipelineEvent>(mine);
            for (int r = 1; r < world.Size; r++)
            {
                using var count = torch.zeros(1, torch.int64);
                world.Receive(count, r, Tag);
                long n = count.item<long>();
                if (n == 0) continue;
                using var packed = torch.zeros(n, 6, torch.float64);
                world.Receive(packed, r, Tag);
                var v = packed.data<double>().ToArray();
                for (int i = 0; i < n; i++)
                    all.Add(new PipelineEvent((int)v[6 * i], (PipelineActionKind)(int)v[6 * i + 1], (int)v[6 * i + 2], (int)v[6 * i + 3], v[6 * i + 4], v[6 * i + 5]));
            }
            return From(all);
        }

        /// <summary>Time from the first start to the last end, in microseconds.</summary>
        public double Span => Events.Count == 0 ? 0 : Events.Max(e => e.End) - Events.Min(e => e.Start);

        /// <summary>
        /// Share of rank-time not spent in forward or backward: 1 − Σ compute / (ranks × span). Communication and
        /// waiting count as bubble. Compare with (p − 1) / (m + p − 1) for GPipe and 1F1B, (p − 1) / (v·m + p − 1) interleaved.
        /// </summary>
        public double BubbleFraction
        {
            get
            {
                var ranks = Events.Select(e => e.Rank).Distinct().Count();
                return Events.Count == 0 ? 0 : 1 - Events.Where(e => e.IsCompute).Sum(e => e.End - e.Start) / (ranks * Span);
            }
        }

        /// <summary>The ideal bubble fraction of a schedule with equal stage times.</summary>
        public static double IdealBubbleFraction(int stages, int microbatches, int virtualStages = 1) =>
            (stages - 1.0) / (virtualStages * microbatches + stages - 1.0);

        /// <summary>Chrome trace JSON: one track (tid) per rank, compute and communication as slices, gaps as "idle".</summary>
        public string ToChromeTrace()
        {
            var json = new StringBuilder("{\"displayTimeUnit\":\"ms\",\"traceEvents\":[\n");
            var items = new List<string>();
            foreach (var rank in Events.GroupBy(e => e.Rank))
            {
                items.Add(Invariant($"{{\"name\":\"thread_name\",\"ph\":\"M\",\"pid\":0,\"tid\":{rank.Key},\"args\":{{\"name\":\"rank {rank.Key}\"}}}}"));
                double previous = Events.Min(e => e.Start);
                foreach (var e in rank)
                {
                    if (e.Start > previous) items.Add(Slice("idle", "idle", rank.Key, previous, e.Start, -1, -1));
                    items.Add(Slice(e.Label, e.IsCompute ? "compute" : "communication", rank.Key, e.Start, e.End, e.Microbatch, e.Stage));
                    previous = Math.Max(previous, e.End);
                }
            }
            json.Append(string.Join(",\n", items)).Append("\n]}\n");
            return json.ToString();
        }

        /// <summary>An SVG picture of the timeline: one row per rank, forwards blue, backwards green, communication grey.</summary>
        public string ToSvg()
        {
            const double width = 1000, row = 28, left = 70, top = 24;
            var ranks = Events.Select(e => e.Rank).Distinct().OrderBy(r => r).ToList();
            double t0 = Events.Count == 0 ? 0 : Events.Min(e => e.Start), scale = Span > 0 ? width / Span : 0;
            var svg = new StringBuilder();
            svg.Append(Invariant($"<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{left + width + 10}\" height=\"{top + row * ranks.Count + 30}\" font-family=\"sans-serif\" font-size=\"11\">\n"));
            svg.Append(Invariant($"<text x=\"{left}\" y=\"15\">bubble {BubbleFraction:P1}, span {Span / 1000:F1} ms</text>\n"));
            foreach (var (rank, i) in ranks.Select((r, i) => (r, i)))
            {
                double y = top + i * row;
                svg.Append(Invariant($"<text x=\"4\" y=\"{y + 17}\">rank {rank}</text>\n"));
                svg.Append(Invariant($"<rect x=\"{left}\" y=\"{y}\" width=\"{width}\" height=\"{row - 4}\" fill=\"#f4f4f4\"/>\n"));
                foreach (var e in Events.Where(e => e.Rank == rank))
                {
                    var colour = e.Kind switch { PipelineActionKind.Forward => "#4a7fd4", PipelineActionKind.Backward => "#3ea85a", _ => "#b0b0b0" };
                    double x = left + (e.Start - t0) * scale, w = Math.Max(0.5, (e.End - e.Start) * scale);
                    svg.Append(Invariant($"<rect x=\"{x:F1}\" y=\"{y}\" width=\"{w:F1}\" height=\"{row - 4}\" fill=\"{colour}\"><title>{e.Label} stage {e.Stage}</title></rect>\n"));
                    if (e.IsCompute && w > 14) svg.Append(Invariant($"<text x=\"{x + 2:F1}\" y=\"{y + 16}\" fill=\"white\">{e.Label}</text>\n"));
                }
            }
            svg.Append("</svg>\n");
            return svg.ToString();
        }

        /// <summary>Writes <c>path</c> (Chrome trace JSON) and the same name with .svg.</summary>
        public void Write(string path)
        {
            var directory = Path.GetDirectoryName(Path.GetFullPath(path));
            if (directory is not null) Directory.CreateDirectory(directory);
            File.WriteAllText(path, ToChromeTrace());
            File.WriteAllText(Path.ChangeExtension(path, ".svg"), ToSvg());
        }

        private const int Tag = 1 << 14;

        private static string Slice(string name, string category, int rank, double start, double end, int microbatch, int stage) =>
            Invariant($"{{\"name\":\"{name}\",\"cat\":\"{category}\",\"ph\":\"X\",\"pid\":0,\"tid\":{rank},\"ts\":{start:F1},\"dur\":{end - start:F1},\"args\":{{\"microbatch\":{microbatch},\"stage\":{stage}}}}}");

        private static string Invariant(FormattableString text) => text.ToString(CultureInfo.InvariantCulture);
    }
}
