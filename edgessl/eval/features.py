"""Frozen-encoder features and encoder loading."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from edgessl.data.augment import eval_view
from edgessl.models import TinyNeXt, create_encoder
from edgessl.models.tinynext import OUTPUT_STAGES
from edgessl.train.checkpoint import load


def load_encoder(path: str | Path) -> tuple[TinyNeXt, dict]:
    payload = load(Path(path))
    if payload.get("kind") != "edgessl-encoder":
        raise ValueError(f"{path} is not an edgessl encoder checkpoint (expected encoder.pt from `edgessl pretrain`)")
    encoder = create_encoder(payload["encoder"], payload["image_size"])
    encoder.load_state_dict(payload["state_dict"])
    return encoder, payload


@torch.no_grad()
def extract_features(encoder: TinyNeXt, images: np.ndarray, batch_size: int = 500, device: str = "cpu", stages: tuple[str, ...] = OUTPUT_STAGES) -> torch.Tensor:
    """Pooled features of the named stages (`TinyNeXt.pooled_stages`); the default is the encoder's output."""
    encoder.eval().to(device)
    out = []
    for i in range(0, len(images), batch_size):
        x = eval_view(torch.from_numpy(images[i : i + batch_size]).to(device))
        out.append(encoder.pooled_stages(x, stages).float().cpu())
    return torch.cat(out)
