"""Decode once, keep uint8 arrays on disk: an epoch is then bound by compute, not by JPEG decoding."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np

from edgessl.data.readers import ImageArrays, read_split
from edgessl.data.synthetic import SYNTHETIC, synthetic_split

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
    if cache.is_file():
        with np.load(cache, allow_pickle=False) as z:
            return ImageArrays(z["images"], z["labels"], [str(c) for c in z["classes"]])
    arrays = read_split(root, split, size)
    cache.parent.mkdir(parents=True, exist_ok=True)
    tmp = cache.with_suffix(".tmp.npz")
    np.savez(tmp, images=arrays.images, labels=arrays.labels, classes=np.asarray(arrays.classes, dtype=str))
    os.replace(tmp, cache)
    return arrays
