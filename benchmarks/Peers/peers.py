"""The PyTorch side of benchmarks/Peers: the same models as ours, partitioned by hand as Megatron does.

Tensor parallelism: column-parallel layers hold rows of the weight (and bias), row-parallel layers columns, with
Megatron's conjugate pair of autograd functions around dist.all_reduce (identity forward / all-reduce backward before
a column layer, all-reduce forward / identity backward after a row layer). The vocabulary-parallel embedding and
cross-entropy reduce over the tp group as in Megatron's tensor_parallel package. Data parallelism is DDP; the pipeline
is two stages with 1F1B over gloo send/recv. Every rank builds the whole model from one seed and keeps its shard, so
a partitioned run starts from the same weights as one device (compare the printed first losses).

Usage: python3 peers.py MODEL MESH STEPS   (MODEL: mlp | block | gpt; MESH: one | tp | dp | pp)
       python3 peers.py --profile | --matmul   (one device's GPT step by phase; the LM head's matmul rates)
Prints "RESULT <ms per step>" and "LOSS <first step's loss>" from rank 0.
"""
import math
import os
import sys
import time

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn.functional as F
from torch import nn

torch.set_num_threads(1)

MLP = dict(width=512, hidden=2048, depth=4, batch=64)
BLOCK = dict(width=256, heads=8, hidden=1024, depth=2, batch=8, time=64)
GPT = dict(vocabulary=50257, width=128, depth=4, heads=4, context=64, batch=16, microbatches=4)


# ---- Megatron's conjugate functions -------------------------------------------------------------------------------
class CopyToTensorParallel(torch.autograd.Function):
    """f: identity forward, all-reduce of the input gradient backward."""

    @staticmethod
    def forward(ctx, x):
        return x

    @staticmethod
    def backward(ctx, grad):
        grad = grad.contiguous()
        dist.all_reduce(grad)
        return grad


class ReduceFromTensorParallel(torch.autograd.Function):
    """g: all-reduce forward, identity backward."""

    @staticmethod
    def forward(ctx, x):
        x = x.contiguous()
        dist.all_reduce(x)
        return x

    @staticmethod
    def backward(ctx, grad):
        return grad


def tp_info():
    return (dist.get_rank(), dist.get_world_size()) if TP > 1 else (0, 1)


class ColumnParallel(nn.Module):
    def __init__(self, full: nn.Linear, thirds=1):
        """thirds=3: a fused q/k/v projection, of which each rank keeps its heads of q, of k and of v."""
        super().__init__()
        rank, size = tp_info()
        part = full.out_features // thirds // size
        keep = torch.cat([torch.arange(t * part * size + rank * part, t * part * size + (rank + 1) * part) for t in range(thirds)])
        self.weight = nn.Parameter(full.weight.detach()[keep].clone())
        self.bias = None if full.bias is None else nn.Parameter(full.bias.detach()[keep].clone())

    def forward(self, x):
        if TP > 1:
            x = CopyToTensorParallel.apply(x)
        return F.linear(x, self.weight, self.bias)


class RowParallel(nn.Module):
    def __init__(self, full: nn.Linear):
        super().__init__()
        rank, size = tp_info()
        cols = full.in_features // size
        self.weight = nn.Parameter(full.weight.detach()[:, rank * cols:(rank + 1) * cols].clone())
        self.bias = None if full.bias is None else nn.Parameter(full.bias.detach().clone())

    def forward(self, x):
        y = F.linear(x, self.weight)
        if TP > 1:
            y = ReduceFromTensorParallel.apply(y)
        return y if self.bias is None else y + self.bias


# ---- the models ---------------------------------------------------------------------------------------------------
class MlpBlock(nn.Module):
    def __init__(self, width, hidden):
        super().__init__()
        self.norm = nn.LayerNorm(width)
        self.up = ColumnParallel(nn.Linear(width, hidden))
        self.down = RowParallel(nn.Linear(hidden, width))

    def forward(self, x):
        return x + self.down(F.gelu(self.up(self.norm(x))))


class TransformerBlock(nn.Module):
    """Ours: pre-norm, fused q/k/v without bias, causal attention, projection, GELU MLP (4 x width)."""

    def __init__(self, width, heads, hidden):
        super().__init__()
        _, size = tp_info()
        self.width, self.heads, self.local_heads, self.head_size = width, heads, heads // size, width // heads
        self.attention_norm = nn.LayerNorm(width)
        self.qkv = ColumnParallel(nn.Linear(width, 3 * width, bias=False), thirds=3)
        self.projection = RowParallel(nn.Linear(width, width))
        self.mlp_norm = nn.LayerNorm(width)
        self.up = ColumnParallel(nn.Linear(width, hidden))
        self.down = RowParallel(nn.Linear(hidden, width))

    def forward(self, x):
        batch, length, _ = x.shape
        q, k, v = self.qkv(self.attention_norm(x)).chunk(3, -1)
        q, k, v = (t.view(batch, length, self.local_heads, self.head_size).transpose(1, 2) for t in (q, k, v))
        # PyTorch 1.13 has no scaled_dot_product_attention: the math form, as its fallback computes it.
        scores = q @ k.transpose(-2, -1) / math.sqrt(self.head_size)
        mask = torch.ones(length, length, dtype=torch.bool).triu(1)
        attended = scores.masked_fill(mask, float("-inf")).softmax(-1) @ v
        merged = attended.transpose(1, 2).contiguous().view(batch, length, self.local_heads * self.head_size)
        x = x + self.projection(merged)
        return x + self.down(F.gelu(self.up(self.mlp_norm(x))))


def padded(vocabulary, tp):
    # As ours: a multiple of 128 x tp. PEERS_PAD_TO=256 pads every mesh alike, to check tp against one device.
    multiple = int(os.environ.get("PEERS_PAD_TO", 128 * tp))
    return (vocabulary + multiple - 1) // multiple * multiple


class VocabParallelEmbedding(nn.Module):
    def __init__(self, full: nn.Embedding):
        super().__init__()
        rank, size = tp_info()
        self.rows = full.num_embeddings // size
        self.start = rank * self.rows
        self.weight = nn.Parameter(full.weight.detach()[self.start:self.start + self.rows].clone())

    def forward(self, ids):
        if TP == 1:
            return F.embedding(ids, self.weight)
        outside = (ids < self.start) | (ids >= self.start + self.rows)
        local = (ids - self.start).masked_fill(outside, 0)
        found = F.embedding(local, self.weight).masked_fill(outside.unsqueeze(-1), 0.0)
        return ReduceFromTensorParallel.apply(found)


class VocabParallelCrossEntropy(torch.autograd.Function):
    """Megatron's, in place on the logits: max, sum of exponentials and the target's logit reduced over tp; the padded
    columns of the vocabulary are set to -inf first, so they never win and never count (as ours does)."""

    @staticmethod
    def forward(ctx, logits, target, start, vocabulary):
        columns = logits.shape[-1]
        real = max(0, min(columns, vocabulary - start))
        if real < columns:
            logits[..., real:].fill_(float("-inf"))
        peak = logits.max(-1)[0]
        if TP > 1:
            dist.all_reduce(peak, op=dist.ReduceOp.MAX)
        logits.sub_(peak.unsqueeze(-1))
        outside = (target < start) | (target >= start + columns)
        local = (target - start).masked_fill(outside, 0)
        picked = logits.gather(-1, local.unsqueeze(-1)).squeeze(-1).masked_fill(outside, 0.0)
        exps = logits.exp_()
        total = exps.sum(-1)
        if TP > 1:
            dist.all_reduce(picked)
            dist.all_reduce(total)
        loss = total.log() - picked
        softmax = exps.div_(total.unsqueeze(-1))
        ctx.save_for_backward(softmax, local, outside)
        return loss.mean()

    @staticmethod
    def backward(ctx, grad):
        softmax, local, outside = ctx.saved_tensors
        softmax.scatter_add_(-1, local.unsqueeze(-1), -(~outside).float().unsqueeze(-1))
        return softmax.mul_(grad / local.numel()), None, None, None


class GptEmbedding(nn.Module):
    def __init__(self, vocabulary, width, context):
        super().__init__()
        self.tokens = VocabParallelEmbedding(nn.Embedding(vocabulary, width))
        self.positions = nn.Embedding(context, width)

    def forward(self, ids):
        return self.tokens(ids) + self.positions(torch.arange(ids.shape[1]))


class GptStage(nn.Module):
    """The whole GPT (one stage) or one of two pipeline stages of it."""

    def __init__(self, stage, stages):
        super().__init__()
        c = GPT
        torch.manual_seed(1)
        vocabulary = padded(c["vocabulary"], TP)
        embedding = GptEmbedding(vocabulary, c["width"], c["context"])
        blocks = [TransformerBlock(c["width"], c["heads"], 4 * c["width"]) for _ in range(c["depth"])]
        norm = nn.LayerNorm(c["width"])
        head = ColumnParallel(nn.Linear(c["width"], vocabulary, bias=False))
        per = c["depth"] // stages
        self.first, self.last = stage == 0, stage == stages - 1
        self.embedding = embedding if self.first else None
        self.blocks = nn.ModuleList(blocks[stage * per:(stage + 1) * per])
        self.norm = norm if self.last else None
        self.head = head if self.last else None
        self.start = tp_info()[0] * (vocabulary // tp_info()[1])

    def forward(self, x):
        if self.first:
            x = self.embedding(x)
        for block in self.blocks:
            x = block(x)
        return self.head(self.norm(x)) if self.last else x

    def loss(self, logits, target):
        return VocabParallelCrossEntropy.apply(logits, target, self.start, GPT["vocabulary"])


# ---- one rank -----------------------------------------------------------------------------------------------------
TP = 1


def build(model, mesh):
    torch.manual_seed(1)
    if model == "mlp":
        c = MLP
        net = nn.Sequential(*[MlpBlock(c["width"], c["hidden"]) for _ in range(c["depth"])])
        x = torch.randn(c["batch"], c["width"], generator=torch.Generator().manual_seed(3))
    else:
        c = BLOCK
        net = nn.Sequential(*[TransformerBlock(c["width"], c["heads"], c["hidden"]) for _ in range(c["depth"])])
        x = torch.randn(c["batch"], c["time"], c["width"], generator=torch.Generator().manual_seed(3))
    if mesh == "dp":
        rows = x.shape[0] // 2
        x = x[dist.get_rank() * rows:(dist.get_rank() + 1) * rows]
        net = nn.parallel.DistributedDataParallel(net)
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-4)

    # STEP_PHASES=1: each rank prints the mean time of forward, backward (DDP's all-reduce included) and the step.
    phases = [0.0, 0.0, 0.0] if os.environ.get("STEP_PHASES") == "1" else None

    def step():
        marks = [time.perf_counter()]
        optimizer.zero_grad()
        loss = net(x).square().mean()
        marks.append(time.perf_counter())
        loss.backward()
        marks.append(time.perf_counter())
        optimizer.step()
        marks.append(time.perf_counter())
        if phases is not None:
            for k in range(3):
                phases[k] += marks[k + 1] - marks[k]
        return loss.item()

    step.phases = phases
    return step


def build_gpt(mesh):
    c = GPT
    stages = 2 if mesh == "pp" else 1
    stage = dist.get_rank() if mesh == "pp" else 0
    model = GptStage(stage, stages)
    tokens = torch.randint(c["vocabulary"], (c["batch"], c["context"] + 1), generator=torch.Generator().manual_seed(7))
    if mesh == "dp":
        rows = c["batch"] // 2
        tokens = tokens[dist.get_rank() * rows:(dist.get_rank() + 1) * rows]
        model = nn.parallel.DistributedDataParallel(model)
    inner = model.module if mesh == "dp" else model
    ids, target = tokens[:, :-1].contiguous(), tokens[:, 1:].contiguous()
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-4, betas=(0.9, 0.95), weight_decay=0.01)

    def step():
        optimizer.zero_grad()
        if stages == 1:
            loss = inner.loss(model(ids), target)
            loss.backward()
            value = loss.item()
        else:
            value = one_f_one_b(inner, stage, ids, target, c["microbatches"])
        optimizer.step()
        return value

    return step


def one_f_one_b(stage_model, stage, ids, target, microbatches):
    """Two stages, 1F1B: stage 0 runs one forward ahead, then alternates backward and forward."""
    width, rows = GPT["width"], ids.shape[0] // microbatches
    shape = (rows, ids.shape[1], width)
    inputs, outputs, losses, sends = [], [], [], []

    def forward(m):
        if stage == 0:
            out = stage_model(ids[m * rows:(m + 1) * rows])
            sends.append(dist.isend(out.detach().contiguous(), 1))
            outputs.append(out)
        else:
            received = torch.empty(shape)
            dist.recv(received, 0)
            received.requires_grad_()
            inputs.append(received)
            loss = stage_model.loss(stage_model(received), target[m * rows:(m + 1) * rows]) / microbatches
            outputs.append(loss)
            losses.append(loss.item())

    def backward(m):
        if stage == 0:
            grad = torch.empty(shape)
            dist.recv(grad, 1)
            outputs[m].backward(grad)
        else:
            outputs[m].backward()
            sends.append(dist.isend(inputs[m].grad.contiguous(), 0))

    warmup = 1 if stage == 0 else 0
    for m in range(warmup):
        forward(m)
    for m in range(microbatches - warmup):
        forward(m + warmup)
        backward(m)
    for m in range(microbatches - warmup, microbatches):
        backward(m)
    for s in sends:
        s.wait()
    return sum(losses)


def rank_main(rank, world, model, mesh, steps, port):
    global TP
    os.sched_setaffinity(0, {rank % os.cpu_count()})  # as mpiexec -bind-to core does for ours
    torch.set_num_threads(1)
    if world > 1:
        dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world)
    TP = world if mesh == "tp" else 1
    step = build_gpt(mesh) if model == "gpt" else build(model, mesh)
    first = warm_up(step, world)
    if world > 1:
        dist.barrier()
    phases = getattr(step, "phases", None)
    if phases is not None:
        phases[:] = [0.0] * len(phases)
    clock = time.perf_counter()
    for _ in range(steps):
        step()
    if world > 1:
        dist.barrier()
    elapsed = (time.perf_counter() - clock) / steps
    if phases is not None:
        forward, backward, update = (t / steps * 1e3 for t in phases)
        os.write(1, f"\nPHASES rank {rank}: forward {forward:.1f} backward {backward:.1f} step {update:.1f} ms\n".encode())
    # One write per line, each on a line of its own: two processes share stdout (the pp stages).
    if rank == 0:
        os.write(1, f"\nRESULT {elapsed * 1e3}\n".encode())
    if rank == (world - 1 if mesh == "pp" else 0):  # the last pipeline stage holds the loss
        os.write(1, f"\nLOSS {first}\n".encode())


def warm_up(step, world, minimum=3, seconds=3.0):
    """Steps until at least `minimum` steps and `seconds` have passed, by the rule of ours (StepTiming.Warmup, which .NET's
    tiered JIT needs); the ranks agree on the end by one all-reduce a step. Returns the first step's loss."""
    start, first, done = time.perf_counter(), None, 0
    while True:
        if done >= minimum:
            more = torch.tensor([1.0 if time.perf_counter() - start < seconds else 0.0])
            if world > 1:
                dist.all_reduce(more, op=dist.ReduceOp.MAX)
            if more.item() == 0:
                return first
        loss = step()
        first = loss if done == 0 else first
        done += 1


def profile():
    """One device's GPT step by phase (medians of 8 steps), as Peers --profile prints ours."""
    c = GPT
    model = GptStage(0, 1)
    tokens = torch.randint(c["vocabulary"], (c["batch"], c["context"] + 1), generator=torch.Generator().manual_seed(7))
    ids, target = tokens[:, :-1].contiguous(), tokens[:, 1:].contiguous()
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-4, betas=(0.9, 0.95), weight_decay=0.01)
    phases = {"forward": [], "loss": [], "backward": [], "optimizer": []}
    for step in range(11):
        optimizer.zero_grad()
        marks = [time.perf_counter()]
        logits = model(ids)
        marks.append(time.perf_counter())
        loss = model.loss(logits, target)
        marks.append(time.perf_counter())
        loss.backward()
        marks.append(time.perf_counter())
        optimizer.step()
        marks.append(time.perf_counter())
        if step >= 3:
            for k, phase in enumerate(phases):
                phases[phase].append((marks[k + 1] - marks[k]) * 1e3)
    for phase, times in phases.items():
        print(f"{phase:<10} {sorted(times)[len(times) // 2]:8.1f} ms")


def matmul():
    """Single-thread fp32 rates of the LM head's three products and of 2048 x 2048, as Peers --matmul prints ours."""
    x, w, g, a = torch.randn(1024, 128), torch.randn(50304, 128), torch.randn(1024, 50304), torch.randn(2048, 2048)
    head = 2.0 * 1024 * 128 * 50304
    for name, flops, product in [("x @ w.T", head, lambda: x @ w.t()), ("g @ w", head, lambda: g @ w),
                                 ("g.T @ x", head, lambda: g.t() @ x), ("2048 square", 2.0 * 2048 ** 3, lambda: a @ a)]:
        product()
        clock = time.perf_counter()
        for _ in range(3):
            product()
        seconds = (time.perf_counter() - clock) / 3
        print(f"{name:<12} {seconds * 1e3:7.1f} ms {flops / seconds / 1e9:6.1f} GFLOP/s")


if __name__ == "__main__":
    if sys.argv[1] in ("--profile", "--matmul"):
        profile() if sys.argv[1] == "--profile" else matmul()
        sys.exit(0)
    model, mesh, steps = sys.argv[1], sys.argv[2], int(sys.argv[3])
    world = 1 if mesh == "one" else 2
    port = 29500 + os.getpid() % 1000
    if world == 1:
        rank_main(0, 1, model, mesh, steps, port)
    else:
        mp.spawn(rank_main, args=(world, model, mesh, steps, port), nprocs=world)
