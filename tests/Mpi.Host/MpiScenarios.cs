using System;
using System.Collections.Generic;
using System.Linq;
using ModelParallel.Communication;
using ModelParallel.Tests.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace ModelParallel.Tests
{
    /// <summary>Scenarios checked inside an mpiexec job; a failed check throws, which aborts the job non-zero.</summary>
    internal static class MpiScenarios
    {
        [System.Runtime.InteropServices.DllImport("libc", EntryPoint = "kill")]
        private static extern int Kill(int pid, int signal);

        private static string NullText() => null!;

        /// <summary>SIGSTOP to this process: it stops responding without exiting, as a hung or suspended rank does.</summary>
        public static void StopThisProcess() => Kill(Environment.ProcessId, 19);

        /// <summary>One rank does something the others do not; every kind must end the job naming it.</summary>
        public static void Fault(RankContext context, string kind)
        {
            var tp = context.TensorParallel;
            bool odd = context.Rank == 1;
            switch (kind)
            {
                case "operation": // all-reduce on one rank against all-gather on another
                    if (odd) tp.AllGather(torch.ones(4), 0);
                    else tp.AllReduce(torch.ones(4));
                    break;
                case "shape": // [4] against [5]: MPI alone would reduce 4 elements and report success
                    tp.AllReduce(torch.ones(odd ? 5 : 4));
                    break;
                case "skip": // a rank-dependent branch around a partitioned layer: the same operation, dtype and shape next
                    var first = new TestBlock(8, 16, bias: true);
                    var second = new TestBlock(8, 16, bias: true);
                    var h = torch.ones(3, 8);
                    if (!odd) h = first.forward(h);
                    second.forward(h);
                    break;
                case "null": // a NullReferenceException on one rank: .NET turns the SIGSEGV into an exception, unless UCX took the signal
                    tp.AllReduce(torch.ones(4));
                    if (odd) _ = NullText().Length;
                    tp.AllReduce(torch.ones(4));
                    break;
                case "early": // one rank ends its body while the others still issue a collective
                    if (!odd) tp.AllReduce(torch.ones(4));
                    break;
                case "receive-longer": // a receive of [8] from a send of [4]: MPI alone leaves half of it untouched
                    if (odd) tp.Receive(torch.full(8, 7f), 0);
                    else tp.Send(torch.ones(4), 1);
                    tp.Barrier();
                    break;
                case "receive-shorter": // a receive of [4] from a send of [8]: MPI's truncation error
                    if (odd) tp.Receive(torch.full(4, 7f), 0);
                    else tp.Send(torch.ones(8), 1);
                    tp.Barrier();
                    break;
                case "receive-after-departure": // rank 1 sends one message and ends; rank 0 waits for a second
                    if (odd) tp.Send(torch.ones(4), 0);
                    else if (context.Rank == 0) // at 4 processes ranks 2 and 3 only end (receiving, they would fail first, as rightly)
                    {
                        tp.Receive(torch.empty(4), 1);
                        tp.Receive(torch.empty(4), 1);
                    }
                    break;
                default:
                    throw new ArgumentException($"unknown fault '{kind}'");
            }
        }

        /// <summary>
        /// Trains one good Adam step, then rank 1 fails in the second (in forward, after backward, or with a collective
        /// the others do not issue). Each rank prints a line after each step it completes: no rank may print one for
        /// the second step, whose failure must leave every rank's parameters and optimizer state as they were.
        /// </summary>
        public static void TrainingFault(RankContext context, string kind)
        {
            var shape = new ModelShape(Features: 8, Width: 16, Hidden: 32, Outputs: 4, Depth: 2, Bias: true);
            var model = new TestModel(shape);
            var optimizer = torch.optim.Adam(model.parameters(), lr: 0.01);
            for (int step = 0; step < 2; step++)
            {
                bool inject = context.Rank == 1 && step == 1;
                optimizer.zero_grad();
                if (inject && kind == "throw-in-forward") throw new InvalidOperationException("injected fault in forward on rank 1");
                if (inject && kind == "extra-collective") context.TensorParallel.AllReduce(torch.ones(5));
                var loss = nn.functional.mse_loss(model.forward(torch.ones(3, shape.Features)), torch.zeros(3, shape.Outputs));
                loss.backward();
                if (inject && kind == "throw-after-backward")
                {
                    System.Threading.Thread.Sleep(200); // the other ranks are at their step by now
                    throw new InvalidOperationException("injected fault after backward on rank 1");
                }
                optimizer.step();
                Console.WriteLine($"rank {context.Rank} stepped {step}");
                Console.Out.Flush();
            }
        }

        /// <summary>A sender that ends its body before its messages are received: they still arrive, and the job succeeds.</summary>
        public static void DepartedSender(RankContext context)
        {
            var tp = context.TensorParallel;
            if (context.Rank == 1)
            {
                tp.Send(torch.full(4, 1f), 0, tag: 3);
                tp.Send(torch.full(1 << 20, 2f), 0, tag: 5); // 4 MB: sent by rendezvous, not eagerly
                return;
            }
            if (context.Rank != 0) return;
            System.Threading.Thread.Sleep(500); // rank 1's departure notice is here long before the receives
            var first = torch.empty(4);
            var second = torch.empty(1 << 20);
            tp.Receive(first, 1, tag: 3);
            tp.Receive(second, 1, tag: 5);
            Check(first.sum().item<float>() == 4 && second.sum().item<float>() == 2 * (1 << 20), "a departed sender's messages arrived intact");
            Console.WriteLine("departed sender delivered");
        }

        public static void Collectives(RankContext context)
        {
            var c = context.TensorParallel;
            int n = c.Size, r = c.Rank;
            double triangle = n * (n + 1) / 2.0; // sum over ranks of (r + 1)

            foreach (var dtype in new[] { float32, float64, int64, float16, bfloat16 })
            {
                var t = torch.tensor(new float[] { 1, 2, 3 }).to(dtype) * (r + 1);
                c.AllReduce(t);
                Expect(new[] { triangle, 2 * triangle, 3 * triangle }, t, $"all-reduce {dtype}");
                Check(t.dtype == dtype, $"all-reduce keeps {dtype}");
            }

            var storage = torch.arange(6, dtype: float32).reshape(2, 3) * (r + 1);
            c.AllReduce(storage.t()); // non-contiguous view: made contiguous once, written back
            Expect(Enumerable.Range(0, 6).Select(i => i * triangle).ToArray(), storage, "non-contiguous all-reduce");

            var mean = torch.full(new long[] { 2 }, r, float32);
            c.AllReduce(mean, ReduceOp.Average);
            Expect(new[] { (n - 1) / 2.0, (n - 1) / 2.0 }, mean, "average");
            var max = torch.tensor(new double[] { r, -r });
            c.AllReduce(max, ReduceOp.Max);
            Expect(new double[] { n - 1, 0 }, max, "max");

            var rows = c.AllGather(torch.full(new long[] { 1, 2 }, r, float32), 0);
            Expect(Enumerable.Range(0, n).SelectMany(i => new double[] { i, i }).ToArray(), rows, "all-gather dim 0");
            var columns = c.AllGather(torch.full(new long[] { 2, 1 }, r, float32), -1);
            Expect(Enumerable.Range(0, 2).SelectMany(_ => Enumerable.Range(0, n).Select(i => (double)i)).ToArray(), columns, "all-gather dim -1");

            var scattered = c.ReduceScatter(torch.arange(2 * n, dtype: float32).reshape(2, n) * (r + 1), 1);
            Expect(new[] { r * triangle, (n + r) * triangle }, scattered, "reduce-scatter dim 1");

            // Dimension 0, contiguous: MPI reads and writes the caller's tensors in place.
            var blocks = torch.empty(2);
            c.ReduceScatterInto(torch.arange(2 * n, dtype: float32) * (r + 1), blocks, 0);
            Expect(new[] { 2 * r * triangle, (2 * r + 1) * triangle }, blocks, "reduce-scatter into, dim 0");
            var gatheredInto = torch.empty(2 * n, dtype: float64);
            c.AllGatherInto(torch.full(new long[] { 2 }, r, float64), gatheredInto, 0);
            Expect(Enumerable.Range(0, n).SelectMany(i => new double[] { i, i }).ToArray(), gatheredInto, "all-gather into, dim 0");

            OffsetViews(c);

            var broadcast = torch.full(new long[] { 3 }, 7 * r, float32);
            c.Broadcast(broadcast, root: n - 1);
            Expect(Enumerable.Repeat(7.0 * (n - 1), 3).ToArray(), broadcast, "broadcast");

            if (n > 1)
            {
                var into = torch.zeros(2);
                if (r % 2 == 0)
                {
                    c.Send(torch.full(new long[] { 2 }, 100 + r, float32), (r + 1) % n, tag: 3);
                    c.Receive(into, (r + n - 1) % n, tag: 3);
                }
                else
                {
                    c.Receive(into, (r + n - 1) % n, tag: 3);
                    c.Send(torch.full(new long[] { 2 }, 100 + r, float32), (r + 1) % n, tag: 3);
                }
                Expect(Enumerable.Repeat(100.0 + (r + n - 1) % n, 2).ToArray(), into, "ring send/receive");
            }
            c.Barrier();
            if (context.Rank == 0) Console.WriteLine($"collectives ok on {n} processes");
        }

        /// <summary>
        /// Contiguous views that start inside their storage (rows of a larger tensor), on the in-place paths: MPI must
        /// read and write from the view's first element, exactly its elements, and leave the rest of the storage (-1)
        /// alone. An unsupported dtype or device is refused on every rank before any MPI call, so nothing hangs.
        /// </summary>
        private static void OffsetViews(ICommunicator c)
        {
            int n = c.Size, r = c.Rank;
            double triangle = n * (n + 1) / 2.0;
            double[] Framed(IEnumerable<double> inside) => new[] { -1.0 }.Concat(inside).Append(-1.0).ToArray();

            var reduced = torch.full(new long[] { 4, 2 }, -1f, float32);
            reduced.narrow(0, 1, 2).fill_(r + 1);
            c.AllReduce(reduced.narrow(0, 1, 2));
            Expect(new double[] { -1, -1 }.Concat(Enumerable.Repeat(triangle, 4)).Concat(new double[] { -1, -1 }).ToArray(), reduced, "all-reduce of an offset view");

            var started = torch.full(new long[] { 4 }, -1.0, float64);
            started.narrow(0, 1, 2).fill_(r);
            c.StartAllReduce(started.narrow(0, 1, 2), ReduceOp.Average).Wait();
            Expect(Framed(new[] { (n - 1) / 2.0, (n - 1) / 2.0 }), started, "started average of an offset view");

            var source = torch.full(new long[] { 4 }, -1f, float32);
            source.narrow(0, 1, 2).fill_(r);
            var gathered = torch.full(new long[] { 2 * n + 2 }, -1f, float32);
            c.AllGatherInto(source.narrow(0, 1, 2), gathered.narrow(0, 1, 2 * n), 0);
            Expect(Framed(Enumerable.Range(0, n).SelectMany(i => new double[] { i, i })), gathered, "all-gather between offset views");

            var blocks = torch.full(new long[] { 2 * n + 2 }, -1f, float32);
            blocks.narrow(0, 1, 2 * n).copy_(torch.arange(2 * n, dtype: float32) * (r + 1));
            var part = torch.full(new long[] { 4 }, -1f, float32);
            c.ReduceScatterInto(blocks.narrow(0, 1, 2 * n), part.narrow(0, 1, 2), 0, ReduceOp.Average);
            Expect(Framed(new[] { 2 * r * triangle / n, (2 * r + 1) * triangle / n }), part, "reduce-scatter average between offset views");

            Check(Refusal(() => c.AllReduce(torch.ones(2, dtype: int32))).Contains("Int32"), "an int32 all-reduce is refused naming the dtype");
            // Storage MPI cannot address (here the meta device) is refused, never handed to MPI.
            Check(Refusal(() => c.AllReduce(torch.empty(2, device: torch.META))).Contains("CPU tensors"), "a meta tensor is refused as not on the CPU");
        }

        private static string Refusal(Action call)
        {
            try { call(); }
            catch (NotSupportedException e) { return e.Message; }
            throw new InvalidOperationException("expected a NotSupportedException");
        }

        /// <summary>
        /// The partitioned model on <paramref name="mesh"/>, each dp replica on its part of the batch, against one
        /// device on the whole batch: loss, averaged gradients and parameters after 3 Adam steps.
        /// </summary>
        public static void Equivalence(MeshShape mesh)
        {
            const int batch = 8;
            var shape = new ModelShape(Features: 8, Width: 16, Hidden: 32, Outputs: 4, Depth: 2, Bias: true);
            torch.manual_seed(5); // the same logical weights in every process
            var reference = new ReferenceModel(shape);
            var logical = reference.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.detach().clone());
            using var generator = new torch.Generator(9);
            var batches = Enumerable.Range(0, 3).Select(_ => (torch.empty(batch, shape.Features).normal_(0, 1, generator), torch.empty(batch, shape.Outputs).normal_(0, 1, generator))).ToList();
            var expected = TrainingRun.Train(reference, batches, m => m.named_parameters().ToDictionary(p => p.name, p => p.parameter.grad!.clone()), m => m.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.detach().clone()));

            Ranks.Run(mesh, context =>
            {
                var model = new TestModel(shape);
                LogicalState.Load(model, logical);
                var gradients = DataParallel.DataParallelGradients.Attach(model, bucketElements: 300);
                int part = batch / mesh.Dp, d = context.Coordinates.Dp;
                var local = batches.Select(b => (b.Item1.narrow(0, d * part, part), b.Item2.narrow(0, d * part, part))).ToList();
                var actual = TrainingRun.Train(model, local, LogicalState.ExportGradients, LogicalState.Export, gradients.Synchronize);
                var loss = actual.Loss.clone();
                context.DataParallel.AllReduce(loss, ReduceOp.Average);
                Close(expected.Loss, loss, "mean loss over dp");
                Close(expected.Output.narrow(0, d * part, part), actual.Output, "output of this replica's part of the batch");
                foreach (var (name, g) in expected.Gradients) Close(g, actual.Gradients[name], $"gradient of {name}");
                foreach (var (name, p) in expected.Parameters) Close(p, actual.Parameters[name], $"{name} after 3 Adam steps");
                context.World.Barrier();
                if (context.Rank == 0) Console.WriteLine($"equivalence ok on {mesh}");
            });
        }

        /// <summary>
        /// Gradients from outside the taps, on processes, where a started bucket is a real MPI_Iallreduce in flight: a weight
        /// also read directly (MixedUseModel) and two backwards before one Synchronize (TestModel, buckets of 300), each
        /// step's averaged gradients against one device on the whole batch.
        /// </summary>
        public static void UsesOutsideTaps(int dp)
        {
            const int batch = 8;
            using var generator = new torch.Generator(9);
            var batches = Enumerable.Range(0, 3).Select(_ => (torch.empty(batch, 8).normal_(0, 1, generator), torch.empty(batch, 8).normal_(0, 1, generator))).ToList();
            torch.manual_seed(5);
            var mixed = new ReferenceMixedUseModel(8);
            var shape = new ModelShape(Features: 8, Width: 16, Hidden: 32, Outputs: 8, Depth: 2, Bias: true);
            var stack = new ReferenceModel(shape);
            var mixedState = mixed.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.detach().clone());
            var stackState = stack.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.detach().clone());
            // One device: the whole batch per step for the first; for the second, its two halves, one backward each.
            var expectedMixed = Steps(mixed, batches.Select(b => new[] { b }).ToList(), null);
            var expectedStack = Steps(stack, batches.Select(b => new[] { Rows(b, 0, batch / 2), Rows(b, batch / 2, batch / 2) }).ToList(), null);

            Ranks.Run(new MeshShape(dp: dp), context =>
            {
                int d = context.Coordinates.Dp, part = batch / dp;
                var model = new MixedUseModel(8);
                LogicalState.Load(model, mixedState);
                var actual = Steps(model, batches.Select(b => new[] { Rows(b, d * part, part) }).ToList(), DataParallel.DataParallelGradients.Attach(model));
                for (int step = 0; step < 3; step++)
                    foreach (var (name, g) in expectedMixed[step]) Close(g, actual[step][name], $"weight read directly, step {step + 1}: gradient of {name}");
                var partitioned = new TestModel(shape);
                LogicalState.Load(partitioned, stackState);
                var halves = batches.Select(b => new[] { Rows(b, d * part / 2, part / 2), Rows(b, batch / 2 + d * part / 2, part / 2) }).ToList();
                actual = Steps(partitioned, halves, DataParallel.DataParallelGradients.Attach(partitioned, bucketElements: 300));
                for (int step = 0; step < 3; step++)
                    foreach (var (name, g) in expectedStack[step]) Close(g, actual[step][name], $"two backwards, step {step + 1}: gradient of {name}");
                context.World.Barrier();
                if (context.Rank == 0) Console.WriteLine($"uses outside the taps ok on dp={dp}");
            });
        }

        private static (Tensor, Tensor) Rows((Tensor X, Tensor Y) b, int start, int length) => (b.X.narrow(0, start, length), b.Y.narrow(0, start, length));

        /// <summary>Adam steps of mean-squared error, each over its micro-batches' summed gradients; every step's (averaged) gradients.</summary>
        private static List<Dictionary<string, Tensor>> Steps(nn.Module<Tensor, Tensor> model, List<(Tensor X, Tensor Y)[]> steps, DataParallel.DataParallelGradients? averaging)
        {
            var optimizer = torch.optim.Adam(model.parameters(), lr: 0.01);
            var recorded = new List<Dictionary<string, Tensor>>();
            foreach (var micro in steps)
            {
                optimizer.zero_grad();
#pragma warning disable MP0021 // given whole-output models only (the references, MixedUseModel and TestModel)
                foreach (var (x, y) in micro) nn.functional.mse_loss(model.forward(x), y).backward();
#pragma warning restore MP0021
                averaging?.Synchronize();
                recorded.Add(model.named_parameters().ToDictionary(p => p.name, p => p.parameter.grad!.clone()));
                optimizer.step();
            }
            return recorded;
        }

        /// <summary>
        /// The sequence-parallel stack on a dp x tp mesh of processes against its plain single-device form: the mean
        /// loss, this replica's output, every gradient and every parameter after 3 Adam steps.
        /// </summary>
        public static void SequenceEquivalence(MeshShape mesh)
        {
            const int batch = 4, time = 8, width = 16, depth = 2;
            // In float64: Adam turns float32 rounding in its near-zero gradients into parameter differences above 1e-5
            // for this data (float64 agrees to 1e-11), and the collectives are checked in float64 too.
            torch.set_default_dtype(torch.float64);
            torch.manual_seed(5);
            var reference = new PlainSequenceParallelStack(depth, width, 4, 32);
            var logical = reference.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.detach().clone());
            using var generator = new torch.Generator(9);
            var batches = Enumerable.Range(0, 3).Select(_ => (torch.empty(batch, time, width).normal_(0, 1, generator), torch.empty(batch, time, width).normal_(0, 1, generator))).ToList();
            var expected = TrainingRun.Train(reference, batches, m => m.named_parameters().ToDictionary(p => p.name, p => p.parameter.grad!.clone()), m => m.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.detach().clone()));

            Ranks.Run(mesh, context =>
            {
                var model = new SequenceParallelStack(depth, width, 4, 32);
                LogicalState.Load(model, logical);
                var gradients = DataParallel.DataParallelGradients.Attach(model, bucketElements: 300);
                int part = batch / mesh.Dp, d = context.Coordinates.Dp;
                var local = batches.Select(b => (b.Item1.narrow(0, d * part, part), b.Item2.narrow(0, d * part, part))).ToList();
                var actual = TrainingRun.Train(model, local, LogicalState.ExportGradients, LogicalState.Export, gradients.Synchronize);
                var loss = actual.Loss.clone();
                context.DataParallel.AllReduce(loss, ReduceOp.Average);
                Close(expected.Loss, loss, "mean loss over dp");
                Close(expected.Output.narrow(0, d * part, part), actual.Output, "output of this replica's part of the batch");
                foreach (var (name, g) in expected.Gradients) Close(g, actual.Gradients[name], $"gradient of {name}");
                foreach (var (name, p) in expected.Parameters) Close(p, actual.Parameters[name], $"{name} after 3 Adam steps");
                context.World.Barrier();
                if (context.Rank == 0) Console.WriteLine($"sequence-parallel equivalence ok on {mesh}");
            });
        }

        /// <summary>
        /// The pipelined test model on a dp x pp x tp mesh of processes against the single-device reference: the loss,
        /// every gradient and every parameter after 3 Adam steps that each rank holds; then the gathered timeline.
        /// </summary>
        public static void PipelineEquivalence(MeshShape mesh, string schedule, int microbatches)
        {
            const int batch = 16;
            int virtualStages = schedule == "interleaved" ? 2 : 1;
            var shape = new ModelShape(Features: 6, Width: 8, Hidden: 16, Outputs: 3, Depth: 8, Bias: true);
            torch.manual_seed(5);
            var reference = new ReferencePipelineModel(shape);
            var logical = reference.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.detach().clone());
            using var generator = new torch.Generator(9);
            var batches = Enumerable.Range(0, 3).Select(_ => (torch.empty(batch, shape.Features).normal_(0, 1, generator), torch.empty(batch, shape.Outputs).normal_(0, 1, generator))).ToList();
            var expected = TrainingRun.Train(reference, batches, m => m.named_parameters().ToDictionary(p => p.name, p => p.parameter.grad!.clone()), m => m.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.detach().clone()));

            Ranks.Run(mesh, context =>
            {
                var model = new PipelineTestModel(shape);
                LogicalState.Load(model, logical);
                var executor = new Pipelining.PipelineExecutor(model, Pipelining.PipelineSchedule.Create(schedule, mesh.Pp, microbatches, virtualStages), (y, t) => nn.functional.mse_loss(y, t));
                var averaging = DataParallel.DataParallelGradients.Attach(model, bucketElements: 300);
                var optimizer = torch.optim.Adam(model.parameters(), lr: 0.01);
                int part = batch / mesh.Dp, d = context.Coordinates.Dp;
                double firstLoss = double.NaN;
                Dictionary<string, Tensor>? gradients = null;
                foreach (var (x, y) in batches)
                {
                    optimizer.zero_grad();
                    var loss = torch.tensor(new[] { executor.Step(x.narrow(0, d * part, part), y.narrow(0, d * part, part)) });
                    averaging.Synchronize();
                    context.DataParallel.AllReduce(loss, ReduceOp.Average);
                    if (gradients is null)
                    {
                        firstLoss = loss.item<double>();
                        gradients = LogicalState.ExportGradients(model);
                    }
                    optimizer.step();
                }
                Check(Math.Abs(firstLoss - expected.Loss.item<float>()) <= 1e-5 * Math.Abs(firstLoss), $"loss {firstLoss} vs {expected.Loss.item<float>()}");
                var parameters = LogicalState.Export(model);
                Check(gradients!.Count > 0 && gradients.Count < expected.Gradients.Count, $"pp rank {context.Coordinates.Pp} holds {gradients.Count} of {expected.Gradients.Count} parameters");
                foreach (var (name, g) in gradients) Close(expected.Gradients[name], g, $"gradient of {name}");
                foreach (var (name, p) in parameters) Close(expected.Parameters[name], p, $"{name} after 3 Adam steps");
                var trace = Pipelining.PipelineTrace.Gather(executor);
                context.World.Barrier();
                if (context.Rank == 0)
                {
                    int actions = executor.Schedule.Ranks.Sum(r => r.Count) * mesh.Dp * mesh.Tp;
                    Check(trace!.Events.Count == actions, $"the trace has {trace.Events.Count} events, the schedule {actions} actions");
                    Console.WriteLine($"pipeline equivalence ok on {mesh} ({schedule}, m={microbatches}); trace of {trace.Events.Count} events, bubble {trace.BubbleFraction:F3}");
                }
            }, new RunOptions { VirtualPipelineStages = virtualStages });
        }

        internal static void Close(Tensor expected, Tensor actual, string what)
        {
            double scale = expected.abs().max().to(float64).item<double>();
            double difference = (expected.to(float64) - actual.to(float64)).abs().max().item<double>();
            Check(difference <= 1e-5 * scale, $"{what}: difference {difference:E3} exceeds 1e-5 x {scale:E3}");
        }

        private static void Expect(double[] expected, Tensor actual, string what)
        {
            var values = actual.to(float64).contiguous().data<double>().ToArray();
            Check(expected.SequenceEqual(values), $"{what}: got [{string.Join(", ", values)}], expected [{string.Join(", ", expected)}]");
        }

        internal static void Check(bool condition, string message)
        {
            if (!condition) throw new InvalidOperationException(message);
        }
    }
}

namespace ModelParallel.Tests
{
    /// <summary>A user's custom autograd function whose backward throws.</summary>
    internal sealed class ThrowingInBackward : TorchSharp.torch.autograd.SingleTensorFunction<ThrowingInBackward>
    {
        public override string Name => nameof(ThrowingInBackward);

        public override TorchSharp.torch.Tensor forward(TorchSharp.torch.autograd.AutogradContext ctx, params object[] vars) =>
            ((TorchSharp.torch.Tensor)vars[0]).alias();

        public override System.Collections.Generic.List<TorchSharp.torch.Tensor> backward(TorchSharp.torch.autograd.AutogradContext ctx, TorchSharp.torch.Tensor gradOutput) =>
            throw new System.InvalidOperationException("the user's backward failed on purpose");
    }
}
