"""A small labelled image set built in memory, for the smoke recipe and shape tests (no files needed)."""

from __future__ import annotations

import numpy as np

from edgessl.data.readers import ImageArrays

SYNTHETIC = "synthetic"


def synthetic_split(split: str, size: int = 32, n_train: int = 512, n_test: int = 256, n_classes: int = 4) -> ImageArrays:
    """Classes differ by colour and by the orientation of a stripe pattern, so a probe can learn them."""
    n = n_train if split == "train" else n_test
    rng = np.random.default_rng(0 if split == "train" else 1)
    labels = np.arange(n) % n_classes
    yy, xx = np.mgrid[0:size, 0:size] / size
    images = np.empty((n, size, size, 3), dtype=np.uint8)
    for i, c in enumerate(labels):
        angle = np.pi * c / n_classes + rng.normal(0, 0.1)
        stripes = np.sin(12 * (np.cos(angle) * xx + np.sin(angle) * yy) + rng.uniform(0, 6.28))
        colour = np.array([c % 2, (c // 2) % 2, 0.5]) * 0.6 + 0.2
        img = 0.5 + 0.35 * stripes[..., None] * colour + rng.normal(0, 0.05, (size, size, 3))
        images[i] = np.clip(img * 255, 0, 255).astype(np.uint8)
    return ImageArrays(images, labels.astype(np.int64), [f"class{c}" for c in range(n_classes)])
