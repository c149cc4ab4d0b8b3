"""Seeded, stratified label-fraction splits: `fraction=0.2` keeps exactly 20 % of each class."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np


def label_fraction_indices(labels: np.ndarray, fraction: float, seed: int = 0) -> np.ndarray:
    if not 0 < fraction <= 1:
        raise ValueError(f"label fraction must be in (0, 1], got {fraction}")
    rng = np.random.default_rng(seed)
    chosen = []
    for c in np.unique(labels[labels >= 0]):
        idx = np.flatnonzero(labels == c)
        k = max(1, round(fraction * len(idx)))
        chosen.append(np.sort(rng.choice(idx, size=k, replace=False)))
    return np.sort(np.concatenate(chosen))


def save_indices(path: Path, indices: np.ndarray, fraction: float, seed: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"fraction": fraction, "seed": seed, "count": len(indices), "indices": indices.tolist()}))
