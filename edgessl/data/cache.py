"""Decode once, keep uint8 arrays on disk: an epoch is then bound by compute, not by JPEG decoding."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from edgessl.data.readers import ImageArrays, read_split
from edgessl.data.synthetic import SYNTHETIC, synthetic_split

try:
    import fcntl
except ImportError:  # Windows: no lock; each process then decodes and writes its own temporary file
    fcntl = None

CACHE_VERSION = 1


def default_cache_dir() -> Path:
    return Path(os.environ.get("EDGESSL_CACHE", Path.home() / ".cache" / "edgessl"))


def _fingerprint(root: Path, split: str, size: int | None) -> str:
    files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
    h = hashlib.sha1(f"{CACHE_VERSION}|{root.resolve()}|{split}|{size}".encode())
    for p in files[:10000]:
        st = p.stat()
        h.update(f"{p.name}|{st.st_size}|{int(st.st_mtime)}".encode())
    return h.hexdigest()[:16]


def load_split(data: str | Path, split: str, size: int | None = None, cache_dir: Path | None = None) -> ImageArrays:
    """Read a split through the array cache; `data="synthetic"` builds a small labelled set in memory."""
    if str(data) == SYNTHETIC:
        return synthetic_split(split, size or 32)
    root = Path(data)
    cache = (cache_dir or default_cache_dir()) / f"{root.name}-{split}-{_fingerprint(root, split, size)}.npz"
    arrays = _read_cache(cache)
    if arrays is None:
        with _exclusive(cache.with_suffix(".lock")):
            arrays = _read_cache(cache)  # another process (a torchrun rank) may have built it while this one waited
            if arrays is None:
                arrays = read_split(root, split, size)
                _write_cache(cache, arrays)
    return arrays


def _read_cache(cache: Path) -> ImageArrays | None:
    if not cache.is_file():
        return None
    with np.load(cache, allow_pickle=False) as z:
        return ImageArrays(z["images"], z["labels"], [str(c) for c in z["classes"]])


def _write_cache(cache: Path, arrays: ImageArrays) -> None:
    tmp = cache.with_name(f"{cache.stem}.{os.getpid()}.tmp.npz")  # per process: no two writers share a file
    np.savez(tmp, images=arrays.images, labels=arrays.labels, classes=np.asarray(arrays.classes, dtype=str))
    os.replace(tmp, cache)


@contextmanager
def _exclusive(lock: Path) -> Iterator[None]:
    """One process decodes a split, the others wait for its cache instead of decoding it again."""
    lock.parent.mkdir(parents=True, exist_ok=True)
    with open(lock, "w") as handle:
        if fcntl is not None:
            fcntl.flock(handle, fcntl.LOCK_EX)
        yield  # closing the file releases the lock
