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


def init_distributed(device: str) -> tuple[DistContext, torch.device]:
    """Joins the process group when launched by torchrun; a plain run is a world of one."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world == 1:
        return DistContext(), torch.device(device)
    ctx = DistContext(int(os.environ["RANK"]), world, int(os.environ.get("LOCAL_RANK", "0")))
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
