namespace ModelParallel.Generators
{
    /// <summary>Names of the generator's pipeline steps, for incremental-caching tests.</summary>
    internal static class TrackingNames
    {
        public const string ParallelModules = nameof(ParallelModules);
        public const string OptimizerSteps = nameof(OptimizerSteps);
    }
}
