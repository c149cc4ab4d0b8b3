"""One adapter per interpreter: load a model file, run a batch of NHWC uint8 images, report a version.

Every adapter takes raw pixels (N, H, W, 3) uint8 and returns float logits (N, classes), so accuracy
and agreement are computed the same way for all of them.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from typing import Protocol

import numpy as np


class Runtime(Protocol):
    name: str

    def run(self, images: np.ndarray) -> np.ndarray: ...

    def version(self) -> str: ...


def package_version(name: str) -> str:
    try:
        return version(name)
    except PackageNotFoundError:
        return "not installed"


def quantize_input(images: np.ndarray, scale: float, zero_point: int, dtype: type) -> np.ndarray:
    q = np.round(images.astype(np.float32) / scale) + zero_point
    info = np.iinfo(dtype)
    return np.clip(q, info.min, info.max).astype(dtype)


def dequantize_output(values: np.ndarray, scale: float, zero_point: int) -> np.ndarray:
    if values.dtype == np.float32:
        return values
    return (values.astype(np.float32) - zero_point) * scale
