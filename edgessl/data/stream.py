"""Streaming WebDataset shards, for data sets larger than memory (`data.stream: true`).

Nothing is cached: each epoch reads the shards in a seeded order, ranks take disjoint shards, a shuffle
buffer mixes samples across shards, and a background thread decodes ahead of the training step (PIL
releases the GIL while decoding). The in-memory cache (`edgessl.data.cache`) stays the faster choice
whenever the decoded uint8 arrays fit in RAM.
"""

from __future__ import annotations

import json
import queue
import tarfile
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch

from edgessl.data.readers import DataError, decode_image, shard_paths, unreadable_shard

IMAGE_EXTS = ("jpg", "jpeg", "png", "webp")


def iter_shard(path: Path, size: int) -> Iterator[np.ndarray]:
    """Decoded images of one shard, read sequentially (tar stream mode: no index, no seeking)."""
    current, image = None, None
    try:
        with tarfile.open(path, "r|*") as tar:
            for member in tar:
                key, _, ext = member.name.partition(".")
                if key != current:
                    if image is not None:
                        yield decode_image(image, size)
                    current, image = key, None
                if member.isfile() and ext.lower() in IMAGE_EXTS:
                    image = tar.extractfile(member).read()
            if image is not None:
                yield decode_image(image, size)
    except (tarfile.TarError, OSError, EOFError) as err:
        raise unreadable_shard(path, err) from err


def count_samples(root: Path, split: str) -> int | None:
    meta = root / "dataset.json"
    if meta.is_file():
        info = json.loads(meta.read_text()).get("splits", {}).get(split, {})
        if "samples" in info:
            return int(info["samples"])
    return None


class ShardStream:
    """uint8 batches (B H W 3) of one rank's share of each global batch, streamed from shards."""

    def __init__(self, root: str | Path, split: str, size: int, batch: int, seed: int, rank: int = 0, world: int = 1, buffer: int = 4096) -> None:
        self.root, self.size, self.seed, self.rank, self.world = Path(root), size, seed, rank, world
        self.shards = shard_paths(self.root, split)
        if len(self.shards) < world:
            raise DataError(f"{len(self.shards)} shards cannot feed {world} ranks without overlap; write at least one shard per rank")
        self.local_batch = batch // world
        self.buffer = buffer
        counted = count_samples(self.root, split)
        self.samples = counted if counted is not None else sum(1 for s in self.shards for _ in iter_shard(s, size))

    def _samples(self, epoch: int) -> Iterator[np.ndarray]:
        rng = np.random.default_rng([self.seed, epoch, self.rank])
        order = np.random.default_rng([self.seed, epoch]).permutation(len(self.shards))
        pool: list[np.ndarray] = []
        while True:  # ranks cycle through their shards: every rank yields as many batches as the epoch needs
            for i in order[self.rank :: self.world]:
                for image in iter_shard(self.shards[i], self.size):
                    if len(pool) < self.buffer:
                        pool.append(image)
                        continue
                    j = int(rng.integers(len(pool)))
                    pool[j], image = image, pool[j]
                    yield image
            for j in rng.permutation(len(pool)):  # end of a pass: flush, so each pass yields every sample once
                yield pool[j]
            pool.clear()

    def batches(self, epoch: int, skip: int = 0) -> Iterator[torch.Tensor]:
        """Endless batches of `epoch`'s order; `skip` drops the first batches (resume mid-epoch)."""
        ahead: queue.Queue = queue.Queue(maxsize=8)
        stop = threading.Event()

        def produce() -> None:
            try:
                samples = self._samples(epoch)
                while not stop.is_set():
                    ahead.put(np.stack([next(samples) for _ in range(self.local_batch)]))
            except Exception as err:  # handed to the training thread, raised there
                ahead.put(err)

        def take() -> np.ndarray:
            item = ahead.get()
            if isinstance(item, Exception):
                raise item
            return item

        threading.Thread(target=produce, daemon=True).start()
        try:
            for _ in range(skip):
                take()
            while True:
                yield torch.from_numpy(take())
        finally:
            stop.set()
            while not ahead.empty():  # unblock the producer so it sees `stop` and closes its shard
                ahead.get_nowait()
