namespace ModelParallel
{
    /// <summary>The named axes of a device mesh. World = dp × pp × tp, tp innermost.</summary>
    public enum MeshAxis
    {
        /// <summary>Data parallel ("dp"): replicas of the model on different batches.</summary>
        Data,
        /// <summary>Pipeline parallel ("pp"): consecutive stages of the model.</summary>
        Pipeline,
        /// <summary>Tensor parallel ("tp"): shards of each layer; neighbouring ranks.</summary>
        Tensor,
    }
}
