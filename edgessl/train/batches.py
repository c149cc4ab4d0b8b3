"""Where the training batches come from: the decoded uint8 cache held in memory, or WebDataset shards streamed
for data sets larger than memory. Either way each rank takes its own slice of every global batch."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch

from edgessl.data.augment import to_device
from edgessl.data.cache import load_split
from edgessl.data.readers import classes_from_meta
from edgessl.data.stream import ShardStream
from edgessl.recipe import Recipe
from edgessl.train.distributed import DistContext, shard


def training_subset(images: np.ndarray, limit: int, seed: int) -> np.ndarray:
    if limit <= 0 or limit >= len(images):
        return images
    return images[np.sort(np.random.default_rng(seed).choice(len(images), size=limit, replace=False))]


class MemoryBatches:
    """Batches from the decoded uint8 cache. The order of an epoch depends only on (seed, epoch), so a
    resumed run lands mid-epoch exactly; each rank takes its slice of every global batch."""

    def __init__(self, images: torch.Tensor, batch: int, seed: int, ctx: DistContext) -> None:
        self.images, self.batch, self.seed, self.ctx = images, batch, seed, ctx
        self.samples = len(images)

    def batches(self, epoch: int, skip: int = 0) -> Iterator[torch.Tensor]:
        perm = torch.randperm(self.samples, generator=torch.Generator().manual_seed(self.seed * 1000 + epoch))
        for i in range(skip, self.samples // self.batch):
            idx = shard(perm[i * self.batch : (i + 1) * self.batch], self.ctx)
            yield self.images[to_device(idx, self.images.device)]


def batch_source(recipe: Recipe, ctx: DistContext, device: torch.device) -> tuple[MemoryBatches | ShardStream, list[str]]:
    d = recipe.data
    if d.stream:
        stream = ShardStream(d.path, "train", d.image_size, recipe.optim.batch_size, recipe.seed, ctx.rank, ctx.world_size, d.shuffle_buffer)
        return stream, classes_from_meta(Path(d.path))
    data = load_split(d.path, "train", d.image_size)
    images = torch.from_numpy(training_subset(data.images, d.train_limit, recipe.seed))
    if device.type == "cuda":
        images = images.to(device)  # uint8 CIFAR-10 is 150 MB: on the GPU, the loader can never starve a 1 M-parameter model
    return MemoryBatches(images, min(recipe.optim.batch_size, len(images)), recipe.seed, ctx), data.classes
