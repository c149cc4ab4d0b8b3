"""Temporary pretraining decoder: a 2-layer Transformer trunk with reconstruction and rotation heads,
plus the adversarial probes of the disentanglement loss. Dropped after pretraining."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from edgessl.ssl.losses import grad_reverse


def mlp_head(dim: int, out: int) -> tuple[nn.Sequential, nn.Linear]:
    return nn.Sequential(nn.Linear(dim, dim), nn.GELU()), nn.Linear(dim, out)


class DualTaskDecoder(nn.Module):
    def __init__(self, in_dim: int, tokens: int, rec_dim: int, num_shifts: int, width: int = 192, depth: int = 2, heads: int = 8) -> None:
        super().__init__()
        self.embed = nn.Linear(in_dim, width)
        self.pos = nn.Parameter(torch.zeros(1, tokens, width))
        nn.init.trunc_normal_(self.pos, std=0.02)
        layer = nn.TransformerEncoderLayer(width, heads, 2 * width, dropout=0.0, activation="gelu", batch_first=True, norm_first=True)
        self.trunk = nn.TransformerEncoder(layer, depth, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(width)
        self.rec_branch, self.rec_out = mlp_head(width, rec_dim)
        self.rot_branch, self.rot_out = mlp_head(width, num_shifts + 1)
        self.rec_probe = nn.Linear(width, num_shifts + 1)  # reads rotation labels from the rec branch
        self.rot_probe = nn.Linear(width, 1)  # reads the mask pattern from the rot branch

    def forward(self, tokens: torch.Tensor, grl_scale: float = 1.0) -> dict[str, torch.Tensor]:
        """tokens: B N C. Returns predictions and the probes' logits (behind the GRL)."""
        h = self.norm(self.trunk(self.embed(tokens) + self.position(tokens.shape[1])))
        rec_h, rot_h = self.rec_branch(h), self.rot_branch(h)
        return {
            "rec": self.rec_out(rec_h),
            "rot": self.rot_out(rot_h),
            "rec_probe": self.rec_probe(grad_reverse(rec_h, grl_scale)),
            "rot_probe": self.rot_probe(grad_reverse(rot_h, grl_scale)),
        }

    def position(self, tokens: int) -> torch.Tensor:
        """The learned square grid of position embeddings, resampled when a view has another token grid
        (a smaller global view: augment.global_size), as ViTs do for a new resolution."""
        if tokens == self.pos.shape[1]:
            return self.pos
        side, new = math.isqrt(self.pos.shape[1]), math.isqrt(tokens)
        grid = self.pos.transpose(1, 2).reshape(1, -1, side, side)
        grid = F.interpolate(grid, size=(new, new), mode="bilinear", align_corners=False)
        return grid.flatten(2).transpose(1, 2)


class Projector(nn.Module):
    """VICReg expander on pooled features."""

    def __init__(self, in_dim: int, dim: int) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(in_dim, dim), nn.BatchNorm1d(dim), nn.ReLU(), nn.Linear(dim, dim), nn.BatchNorm1d(dim), nn.ReLU(), nn.Linear(dim, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)
