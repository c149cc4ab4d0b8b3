"""torch.distributed (DDP) on an existing engine: `torchrun` sets RANK/WORLD_SIZE/LOCAL_RANK, we read them.

One process per device. Every rank walks the same seeded permutation and takes its own slice of each
global batch (sharded sampling), so the global batch and the step count do not depend on the world size.
Only rank 0 logs and writes checkpoints.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistContext:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def launch_context() -> DistContext:
    """This process's place in a torchrun launch (RANK, WORLD_SIZE, LOCAL_RANK); a plain run is a world of one."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world == 1:
        return DistContext()
    return DistContext(int(os.environ["RANK"]), world, int(os.environ.get("LOCAL_RANK", "0")))


def check_device(device: str) -> None:
    """A device string torch can use here, checked before any work starts."""
    try:
        kind = torch.device(device).type
    except RuntimeError as err:
        raise ValueError(f"device {device!r}: {err} (cpu, cuda or cuda:N)") from err
    if kind == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} asked for, but this torch ({torch.__version__}) sees no CUDA device; use cpu")


def init_distributed(device: str) -> tuple[DistContext, torch.device]:
    """Joins the process group when launched by torchrun."""
    ctx = launch_context()
    if not ctx.enabled:
        return ctx, torch.device(device)
    if device.startswith("cuda"):
        torch.cuda.set_device(ctx.local_rank)
        dev = torch.device("cuda", ctx.local_rank)
    else:
        dev = torch.device(device)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if dev.type == "cuda" else "gloo")
    return ctx, dev


def shard(indices: torch.Tensor, ctx: DistContext) -> torch.Tensor:
    """This rank's part of a global batch: every world_size-th sample."""
    return indices[ctx.rank :: ctx.world_size]


def mean_across_ranks(values: dict[str, torch.Tensor], ctx: DistContext) -> dict[str, float]:
    """Average logged losses so every rank's corruption scheduler sees the same numbers and stays in step.
    One stacked tensor: one all-reduce and one host-device sync per step, not one per loss."""
    keys = sorted(values)
    t = torch.stack([values[k].detach().double() for k in keys])
    if ctx.enabled:
        t = t.to(_collective_device())
        dist.all_reduce(t)
        t /= ctx.world_size
    return dict(zip(keys, t.tolist(), strict=True))


class _GatherBatches(torch.autograd.Function):
    """all_gather along the batch dimension that passes gradients back: each rank keeps the summed gradient
    of its own slice. Every rank computes the same loss on the gathered batch, so after DDP averages the
    parameter gradients over ranks they equal the single-process gradient of that loss."""

    @staticmethod
    def forward(ctx: torch.autograd.function.FunctionCtx, x: torch.Tensor, dim: int) -> torch.Tensor:
        parts = [torch.empty_like(x) for _ in range(dist.get_world_size())]
        dist.all_gather(parts, x.contiguous())
        ctx.dim, ctx.start, ctx.size = dim, dist.get_rank() * x.shape[dim], x.shape[dim]
        return torch.cat(parts, dim)

    @staticmethod
    def backward(ctx: torch.autograd.function.FunctionCtx, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        grad = grad.contiguous()
        dist.all_reduce(grad)
        return grad.narrow(ctx.dim, ctx.start, ctx.size), None


def gather_batches(x: torch.Tensor, dim: int = 0) -> torch.Tensor:
    """The global batch of a batch-statistics loss (VICReg's variance and covariance) under DDP: every rank's
    samples, concatenated in rank order along `dim`; a plain run gets `x` back."""
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return x
    return _GatherBatches.apply(x, dim)


def rank0_value(value: float, ctx: DistContext) -> float:
    """Rank 0's `value` on every rank: a clock reading that decides when the time budget runs out (and, with
    optim.schedule_by_time, the learning rate), which each rank's own clock could otherwise put a step apart,
    leaving the others waiting in a collective or training with another rate."""
    if not ctx.enabled:
        return value
    t = torch.tensor([value], dtype=torch.float64, device=_collective_device())
    dist.broadcast(t, 0)
    return float(t.item())


def parameter_checksums(module: torch.nn.Module, ctx: DistContext) -> list[float]:
    """One checksum of all parameters per rank; equal numbers mean the replicas are in sync."""
    local = torch.stack([p.detach().double().sum() for p in module.parameters()]).sum().reshape(1)
    if not ctx.enabled:
        return local.tolist()
    local = local.to(_collective_device())
    gathered = [torch.zeros_like(local) for _ in range(ctx.world_size)]
    dist.all_gather(gathered, local)
    return [float(g) for g in gathered]


def _collective_device() -> torch.device:
    """NCCL moves only CUDA tensors; gloo takes CPU ones."""
    return torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else torch.device("cpu")


def barrier(ctx: DistContext) -> None:
    if ctx.enabled:
        dist.barrier()


def cleanup(ctx: DistContext) -> None:
    if ctx.enabled and dist.is_initialized():
        dist.destroy_process_group()
