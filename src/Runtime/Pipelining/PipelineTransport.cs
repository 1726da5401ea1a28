using System;
using System.Linq;
using ModelParallel.Communication;
using TorchSharp;

namespace ModelParallel.Pipelining
{
    /// <summary>
    /// Point-to-point tensors between stages whose shape the receiver does not know in advance: a small header
    /// (dtype, rank, dimensions) and then the data, both on the same tag, so FIFO order keeps them paired.
    /// Between threads (an unwrapped in-process communicator) the tensor itself travels and no header is needed.
    /// </summary>
    internal static class PipelineTransport
    {
        private const int MaxDimensions = 8;

        public static void Send(ICommunicator communicator, torch.Tensor tensor, int destination, int tag)
        {
            if (communicator is InProcessCommunicator)
            {
                communicator.Send(tensor, destination, tag);
                return;
            }
            if (tensor.dim() > MaxDimensions) throw new ArgumentException($"Pipeline activations have at most {MaxDimensions} dimensions; got {tensor.dim()}.");
            var header = new long[2 + MaxDimensions];
            header[0] = (long)tensor.dtype;
            header[1] = tensor.dim();
            for (int d = 0; d < tensor.dim(); d++) header[2 + d] = tensor.shape[d];
            using var headerTensor = torch.tensor(header, device: tensor.device);
            communicator.Send(headerTensor, destination, tag);
            communicator.Send(tensor, destination, tag);
        }

        public static torch.Tensor Receive(ICommunicator communicator, int source, int tag, torch.Device device)
        {
            if (communicator is InProcessCommunicator threads) return threads.ReceiveTensor(source, tag);
            using var header = torch.zeros(2 + MaxDimensions, torch.int64, device);
            communicator.Receive(header, source, tag);
            var values = header.data<long>().ToArray();
            var shape = values.Skip(2).Take((int)values[1]).ToArray();
            var tensor = torch.empty(shape, (torch.ScalarType)values[0], device);
            communicator.Receive(tensor, source, tag);
            return tensor;
        }
    }
}
