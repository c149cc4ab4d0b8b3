"""Exponential moving average of the encoder weights (`optim.encoder_ema`), for export and probes."""

from __future__ import annotations

import copy

import torch
from torch import nn


class EncoderEMA:
    """EMA of every floating-point tensor in the encoder's state (weights and BatchNorm statistics alike, so
    the averaged encoder needs no re-estimation pass). The decay warms up as min(decay, (1 + n) / (10 + n))
    so that the random initial weights are forgotten within the first steps of a short run."""

    def __init__(self, encoder: nn.Module, decay: float) -> None:
        if not 0.0 < decay < 1.0:
            raise ValueError(f"optim.encoder_ema must lie in (0, 1), got {decay}")
        self.decay = decay
        self.module = copy.deepcopy(encoder).requires_grad_(False).eval()
        self.updates = 0

    @torch.no_grad()
    def update(self, encoder: nn.Module) -> None:
        decay = min(self.decay, (1 + self.updates) / (10 + self.updates))
        for avg, new in zip(self.module.state_dict().values(), encoder.state_dict().values(), strict=True):
            if avg.is_floating_point():
                avg.lerp_(new, 1.0 - decay)
            else:  # BatchNorm's num_batches_tracked
                avg.copy_(new)
        self.updates += 1

    def state_dict(self) -> dict:
        return {"module": self.module.state_dict(), "updates": self.updates}

    def load_state_dict(self, state: dict) -> None:
        self.module.load_state_dict(state["module"])
        self.updates = state["updates"]
