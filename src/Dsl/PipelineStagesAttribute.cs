using System;

namespace ModelParallel
{
    /// <summary>
    /// Splits a <c>ModuleList</c> field of blocks across the pipeline-parallel axis "pp": evenly by default,
    /// or by <see cref="Split"/> (blocks per virtual stage). Build the field in the constructor as
    /// <c>nn.ModuleList(Enumerable.Range(0, n).Select(i =&gt; new Block(...)).ToArray())</c>; each rank then
    /// builds only the blocks of its stage (the others exist on the meta device, with no memory).
    /// The module's <c>forward</c> must chain [FirstStage] layers, one <c>foreach</c> over this field,
    /// then [LastStage] layers.
    /// </summary>
    [AttributeUsage(AttributeTargets.Field, Inherited = false)]
    public sealed class PipelineStagesAttribute : Attribute
    {
        /// <summary>Blocks per virtual stage, in order (length pp × virtual stages). Empty: split evenly.</summary>
        public int[] Split { get; set; } = Array.Empty<int>();
    }
}
