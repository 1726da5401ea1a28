using ModelParallel.Communication;

namespace ModelParallel.Tests.Models
{
    /// <summary>Run options whose tp communicators count their collectives (cast context.TensorParallel to <see cref="CountingCommunicator"/>).</summary>
    public static class CountingRun
    {
        public static RunOptions TensorParallel { get; } = new()
        {
            WrapCommunicator = (axis, communicator) => axis == MeshAxis.Tensor ? new CountingCommunicator(communicator) : communicator,
        };
    }
}
