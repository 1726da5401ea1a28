using System;
using System.Linq;
using ModelParallel;
using ModelParallel.Tests;
using ModelParallel.Tests.Models;
using TorchSharp;

torch.set_num_threads(1);
int world = int.Parse(Environment.GetEnvironmentVariable("PMI_SIZE") ?? "1");
switch (args.FirstOrDefault())
{
    case "collectives":
        Ranks.Run(new MeshShape(tp: world), MpiScenarios.Collectives);
        break;
    case "fail":
        Ranks.Run(new MeshShape(tp: world), context =>
        {
            if (context.Rank == 1) throw new InvalidOperationException("boom from rank 1");
            context.TensorParallel.AllReduce(torch.ones(4));
        });
        break;
    case "indivisible":
        Ranks.Run(new MeshShape(tp: world), _ => new TestModel(new ModelShape(4, 8, Hidden: 9, 2, Depth: 1, Bias: true)));
        break;
    case "fault":
        // fault KIND: a mistake only one rank makes; the job must fail naming it, never hang or finish.
        Ranks.Run(new MeshShape(tp: world), context => MpiScenarios.Fault(context, args[1]));
        break;
    case "training-fault":
        // training-fault KIND: rank 1 fails in the second training step; no rank may complete that step.
        Ranks.Run(world == 4 ? new MeshShape(dp: 2, tp: 2) : new MeshShape(tp: world), context => MpiScenarios.TrainingFault(context, args[1]));
        break;
    case "departed-sender":
        Ranks.Run(new MeshShape(tp: world), MpiScenarios.DepartedSender);
        break;
    case "stall":
        // One process stops (SIGSTOP) before its second collective; the others' watchdog must end the job.
        Ranks.Run(new MeshShape(tp: world), context =>
        {
            context.TensorParallel.AllReduce(torch.ones(4));
            if (context.Rank == 1) MpiScenarios.StopThisProcess();
            context.TensorParallel.AllReduce(torch.ones(4));
        }, new RunOptions { CollectiveTimeout = TimeSpan.FromSeconds(3) });
        break;
    case "user-backward":
        // A user's autograd function that throws in backward, on rank 1 only (threads, or processes under mpiexec).
        Ranks.Run(new MeshShape(tp: world > 1 ? world : 2), context =>
        {
            var x = torch.ones(3, requires_grad: true);
            var y = context.Rank == 1 ? ThrowingInBackward.apply(x) : x * 2;
            y.sum().backward();
        });
        break;
    case "saved-then-written":
        // Each collective that writes in place overwrites a tensor backward saved; backward must refuse, not use it.
        // The last rank reports: it is not the broadcast's root, whose tensor is only read.
        int ranks = Math.Max(world, 2); // two threads without mpiexec
        Ranks.Run(new MeshShape(tp: ranks), context =>
        {
            foreach (var (name, write) in new (string, Action<torch.Tensor>)[]
            {
                ("all-reduce", t => context.TensorParallel.AllReduce(t)),
                ("started all-reduce", t => context.TensorParallel.StartAllReduce(t).Wait()),
                ("all-gather", t => context.TensorParallel.AllGatherInto(torch.ones(4 / ranks), t, 0)),
                ("reduce-scatter", t => context.TensorParallel.ReduceScatterInto(torch.ones(4 * ranks), t, 0)),
                ("broadcast", t => context.TensorParallel.Broadcast(t, 0)),
                ("receive", t =>
                {
                    if (context.Rank == 0) context.TensorParallel.Send(torch.ones(4), ranks - 1);
                    else if (context.Rank == ranks - 1) context.TensorParallel.Receive(t, 0);
                }),
            })
            {
                var x = torch.ones(4);
                var w = torch.ones(4).requires_grad_(true);
                var y = (x * w).sum();
                write(x);
                var error = Record(() => y.backward());
                if (context.Rank == ranks - 1) Console.WriteLine($"{name}: {(error?.Contains("modified by an inplace operation") == true ? "refused" : "NOT REFUSED: " + error)}");
            }
        });
        break;
    case "mismatch":
        Ranks.Run(new MeshShape(tp: world + 1), _ => { });
        break;
    case "equivalence":
        // equivalence DP TP: the mesh dp x tp (its size must be the process count)
        MpiScenarios.Equivalence(new MeshShape(dp: int.Parse(args[1]), tp: int.Parse(args[2])));
        break;
    case "uses":
        // uses DP: gradients from outside the taps (a weight read directly, two backwards) on dp processes
        MpiScenarios.UsesOutsideTaps(int.Parse(args[1]));
        break;
    case "control-flow":
        // control-flow: replicas whose forwards differ (a branch one takes, a layer one drops) on dp=2 processes
        ControlFlowScenario.Run();
        break;
    case "sequence":
        // sequence DP TP: the sequence-parallel stack on the mesh dp x tp
        MpiScenarios.SequenceEquivalence(new MeshShape(dp: int.Parse(args[1]), tp: int.Parse(args[2])));
        break;
    case "pipeline":
        // pipeline DP PP TP SCHEDULE MICROBATCHES
        MpiScenarios.PipelineEquivalence(new MeshShape(dp: int.Parse(args[1]), pp: int.Parse(args[2]), tp: int.Parse(args[3])), args[4], int.Parse(args[5]));
        break;
    default:
        Console.Error.WriteLine("usage: ModelParallel.Mpi.Host collectives | fail | indivisible | fault KIND | training-fault KIND | departed-sender | stall | mismatch | equivalence DP TP | uses DP | sequence DP TP | pipeline DP PP TP SCHEDULE M  (under mpiexec)");
        return 2;
}
return 0;

static string? Record(Action action)
{
    try
    {
        action();
        return null;
    }
    catch (Exception e)
    {
        return e.Message;
    }
}
