using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Linq;
using ModelParallel.Communication;
using ModelParallel.DataParallel;
using ModelParallel.Examples.Gpt.Data;
using ModelParallel.Examples.Gpt.Model;
using ModelParallel.Layers;
using ModelParallel.Pipelining;
using TorchSharp;
using static TorchSharp.torch;

namespace ModelParallel.Examples.Gpt.Training
{
    /// <summary>
    /// One rank's training: the GPT built as this rank's shard, the pipeline executor with the vocabulary-parallel loss,
    /// dp gradient averaging, AdamW with warm-up and cosine decay, validation every few steps and a sample at the end.
    /// </summary>
    public sealed class GptTraining
    {
        private readonly TrainingOptions options;
        private readonly RankContext context;
        private readonly GptModel model;
        private readonly PipelineExecutor executor;
        private readonly DataParallelGradients? averaging;
        private readonly VocabParallelLoss loss;
        private readonly torch.optim.Optimizer optimizer;
        private readonly TorchSharp.Modules.AdamW adam;

        /// <summary>Builds this rank's part of the model; <paramref name="logical"/> (a single-device state dict) replaces its initial weights.</summary>
        public GptTraining(TrainingOptions options, IReadOnlyDictionary<string, Tensor>? logical = null)
        {
            this.options = options;
            context = RankContext.Current ?? throw new InvalidOperationException("GptTraining runs inside Ranks.Run.");
            model = new GptModel(options.Config, options.Vocabulary);
            if (logical is not null) LogicalState.Load(model, logical.ToDictionary(kv => kv.Key, kv => kv.Value));
            loss = new VocabParallelLoss(options.Config.Vocabulary);
            executor = new PipelineExecutor(model, PipelineSchedule.Create(options.Schedule, options.Mesh.Pp, options.Microbatches, options.VirtualStages), loss);
            averaging = options.Mesh.Dp > 1 ? DataParallelGradients.Attach(model) : null;
            adam = new InPlaceAdamW(model.parameters(), lr: options.LearningRate, beta1: 0.9, beta2: 0.95, weight_decay: 0.01);
            optimizer = adam;
        }

        /// <summary>Saves the model and the optimizer's state (every rank its own shards) under <paramref name="root"/>.</summary>
        public string Save(string root, Checkpointing.CheckpointState state, int keep = 3) => Checkpointing.Checkpoint.Save(root, model, optimizer, state, keep);

        /// <summary>Loads a checkpoint saved on any mesh into this rank's model and optimizer.</summary>
        public Checkpointing.CheckpointState Load(string path) => Checkpointing.Checkpoint.Load(path, model, optimizer);

        /// <summary>The optimizer's state of every parameter this rank holds (step, moments), as bytes, for comparing states.</summary>
        public void WriteOptimizerState(System.IO.Stream stream)
        {
            foreach (var state in adam.state_dict().State.Cast<TorchSharp.Modules.AdamW.State>())
            {
                if (state.exp_avg.device_type == DeviceType.META) continue; // a layer of another pipeline stage
                stream.Write(BitConverter.GetBytes(state.step));
                using var average = state.exp_avg.detach().clone(); // alive while their bytes are read
                using var squares = state.exp_avg_sq.detach().clone();
                stream.Write(average.bytes);
                stream.Write(squares.bytes);
            }
        }

        /// <summary>This rank's module (its shard of every layer it holds).</summary>
        public GptModel Model => model;

        /// <summary>One optimizer step on this dp rank's rows; returns the whole batch's mean loss (averaged over dp) on every rank.</summary>
        public double Step(int step, Tensor input, Tensor target)
        {
            using var scope = torch.NewDisposeScope();
            foreach (var group in adam.ParamGroups) group.LearningRate = options.LearningRateAt(step);
            optimizer.zero_grad();
            double value = executor.Step(input, target);
            averaging?.Synchronize();
            optimizer.step();
            return options.Mesh.Dp > 1 ? Average(context.DataParallel, value) : value;
        }

        /// <summary>The mean validation loss over <paramref name="batches"/>' fixed validation windows, on every rank.</summary>
        public double Validate(Batches batches)
        {
            using var scope = torch.NewDisposeScope();
            double total = 0;
            for (int i = 0; i < options.ValidationBatches; i++)
            {
                var (input, target) = batches.Validation(i, options.ValidationBatches);
                var logits = executor.Forward(input);
                double value = logits is null ? 0 : loss.Compute(logits, target).ToDouble();
                total += BroadcastFromLastStage(value);
            }
            return total / options.ValidationBatches;
        }

        /// <summary>
        /// Continues <paramref name="prompt"/> by <paramref name="tokens"/> tokens with the partitioned model: greedy when
        /// <paramref name="topK"/> is 1, else sampled from the k most likely (the same seeded draw on every rank).
        /// </summary>
        public List<int> Generate(IReadOnlyList<int> prompt, int tokens, int topK, int seed)
        {
            var ids = prompt.ToList();
            using var generator = new torch.Generator((ulong)seed);
            for (int n = 0; n < tokens; n++)
            {
                using var scope = torch.NewDisposeScope();
                var window = ids.Skip(Math.Max(0, ids.Count - (int)options.Config.Context)).Select(i => (long)i).ToArray();
                var logits = executor.Forward(torch.tensor(window).unsqueeze(0));
                long next = 0;
                if (logits is not null)
                {
                    var whole = loss.Whole(logits[0, -1]);
                    if (topK <= 1) next = whole.argmax().item<long>();
                    else
                    {
                        var (values, indices) = whole.topk(topK);
                        var choice = torch.multinomial(torch.softmax(values, 0), 1, generator: generator).item<long>();
                        next = indices[choice].item<long>();
                    }
                }
                ids.Add((int)BroadcastFromLastStage(next));
            }
            return ids.Skip(prompt.Count).ToList();
        }

        /// <summary>Bytes this rank holds in parameters, gradients and optimizer state, plus the pipeline's peak activations.</summary>
        public long StateBytes()
        {
            long parameters = model.parameters().Where(p => p.device_type != DeviceType.META).Sum(p => p.numel() * p.element_size());
            return 4 * parameters + executor.PeakActivationBytes; // weights, gradients, AdamW's two moments
        }

        private double BroadcastFromLastStage(double value)
        {
            if (options.Mesh.Pp == 1) return value;
            using var t = torch.tensor(new[] { value });
            context.PipelineParallel.Broadcast(t, executor.LastStageRank);
            return t.item<double>();
        }

        private static double Average(ICommunicator communicator, double value)
        {
            using var t = torch.tensor(new[] { value });
            communicator.AllReduce(t, ReduceOp.Average);
            return t.item<double>();
        }
    }
}
