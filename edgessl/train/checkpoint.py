"""Atomic checkpoints: write to a temporary file in the same folder, then rename over the old one."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch


def save_atomic(obj: Any, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    torch.save(obj, tmp)
    with open(tmp, "rb") as f:
        os.fsync(f.fileno())
    os.replace(tmp, path)


def load(path: Path) -> dict:
    if not Path(path).is_file():
        raise FileNotFoundError(f"checkpoint {path} not found")
    return torch.load(path, map_location="cpu", weights_only=False)


def encoder_payload(encoder: torch.nn.Module, encoder_name: str, image_size: int, recipe: dict, extra: dict | None = None) -> dict:
    """What deployment needs: the encoder weights and how to rebuild it; no decoder, heads or optimiser."""
    return {
        "kind": "edgessl-encoder",
        "encoder": encoder_name,
        "image_size": image_size,
        "state_dict": encoder.state_dict(),
        "recipe": recipe,
        **(extra or {}),
    }
