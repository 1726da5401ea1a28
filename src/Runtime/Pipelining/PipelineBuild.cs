using System;
using System.Collections.Generic;
using System.Linq;
using TorchSharp;

namespace ModelParallel.Pipelining
{
    /// <summary>
    /// What the generated interceptors call while a pipelined model is constructed: only the layers of this
    /// rank's stage are allocated; the others are built on the meta device (shapes, no memory), so every rank
    /// still builds the same layers in the same order (the same initialisation streams and parameter names).
    /// Outside <c>Ranks.Run</c> everything is built as written.
    /// </summary>
    public static class PipelineBuild
    {
        /// <summary>
        /// Replaces <c>source.Select(selector)</c> for the blocks of a [PipelineStages] list: every block is built,
        /// those of other ranks on the meta device; the split is recorded for the executor.
        /// </summary>
        public static IEnumerable<TResult> Blocks<TSource, TResult>(string layer, IEnumerable<TSource> source, Func<TSource, TResult> selector, int[] split)
        {
            var context = RankContext.Current;
            if (context is null) return source.Select(selector).ToList();
            var items = source.ToList();
            var state = context.Pipeline;
            var layout = new PipelineLayout(layer, items.Count, context.Mesh.Pp, state.VirtualStages, split);
            state.Layout = layout;
            var blocks = new List<TResult>(items.Count);
            for (int i = 0; i < items.Count; i++)
            {
                bool local = layout.RankOf(i) == context.Coordinates.Pp;
                if (!local) state.OffStageDepth++;
                try
                {
                    var block = selector(items[i]);
                    if (block is not null) state.Record(block, local ? layout.ChunkOf(i) : -1);
                    blocks.Add(block);
                }
                finally
                {
                    if (!local) state.OffStageDepth--;
                }
            }
            return blocks;
        }

        /// <summary>The device a layer factory builds on: the meta device for a layer this rank does not run, else <paramref name="device"/>.</summary>
        public static torch.Device? DeviceFor(PipelineRole? role, torch.Device? device)
        {
            var context = RankContext.Current;
            return context is not null && !Holds(context, role) ? torch.META : device;
        }

        /// <summary>
        /// Moves the [FirstStage] and [LastStage] sub-modules this rank does not run to the meta device. torch.nn layers
        /// of those fields are built there already (their factories are intercepted); a sub-module of the user's own type
        /// (constructed with <c>new</c>, which nothing intercepts) is built everywhere, and would otherwise stay behind as
        /// an untrained copy with memory, exported as if it were the trained one.
        /// </summary>
        internal static void ReleaseOffStage(torch.nn.Module model, RankContext context)
        {
            if (model is not IPartitionedModule partitioned || context.Mesh.Pp == 1) return;
            var children = model.named_children().ToDictionary(c => c.name, c => c.module);
            foreach (var (fields, role) in new[] { (partitioned.FirstStageFields, PipelineRole.First), (partitioned.LastStageFields, PipelineRole.Last) })
            {
                if (Holds(context, role)) continue;
                foreach (var field in fields)
                {
                    if (children.TryGetValue(field, out var child) && child.parameters().Any(p => p.device.type != DeviceType.META))
                        child.to(torch.META);
                }
            }
        }

        /// <summary>Whether this rank runs a layer of the given role (null: a layer of the block being built); never while validating a mesh.</summary>
        internal static bool Holds(RankContext context, PipelineRole? role) =>
            !context.Validating && context.Pipeline.OffStageDepth == 0 && role switch
            {
                PipelineRole.First => context.Coordinates.Pp == 0,
                PipelineRole.Last => context.Coordinates.Pp == context.Mesh.Pp - 1,
                _ => true,
            };
    }
}
