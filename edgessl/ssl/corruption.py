"""Disjoint mask / rotation corruption of one token sequence, in one pass.

Two kinds of rotation: `roll` (the method's cyclic roll of a token along its features) and `rot90`
(the token's image patch turned by k x 90 degrees before the encoder). A roll of feature channels can be
read from per-channel statistics alone; a turned patch can only be recognised by knowing what upright
image content looks like (RotNet's pretext, per token).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from edgessl.data.augment import to_device

IGNORE = -100


@dataclass
class Corruption:
    mask: torch.Tensor  # B N bool: token replaced by the mask embedding
    shift_class: torch.Tensor  # B N long: 0 untouched, k = rolled by k steps; IGNORE on masked tokens

    @property
    def rotated(self) -> torch.Tensor:
        return self.shift_class > 0


def sample_corruption(batch: int, tokens: int, mask_ratio: float, rot_ratio: float, num_shifts: int, device: torch.device, gen: torch.Generator | None = None) -> Corruption:
    """Per sample, a random permutation: the first n_m tokens are masked, the next n_r rolled (M ∩ R = ∅)."""
    n_mask = round(mask_ratio * tokens)
    n_rot = min(round(rot_ratio * tokens), tokens - n_mask)
    order = torch.rand(batch, tokens, generator=gen).argsort(dim=1)
    rank = order.argsort(dim=1)  # rank[b, n]: position of token n in the permutation
    mask = rank < n_mask
    rotated = (rank >= n_mask) & (rank < n_mask + n_rot)
    shifts = torch.randint(1, num_shifts + 1, (batch, tokens), generator=gen)
    shift_class = torch.where(rotated, shifts, torch.zeros_like(shifts))
    shift_class = torch.where(mask, torch.full_like(shifts, IGNORE), shift_class)
    return Corruption(to_device(mask, device), to_device(shift_class, device))


def roll_tokens(x: torch.Tensor, shift_class: torch.Tensor, num_shifts: int, normalize: bool) -> torch.Tensor:
    """Roll each token (B N C) along C by k*C/(K+1). With `normalize`, roll the standardised token and
    restore its own mean and scale, so the roll is not given away by the token's norm."""
    c = x.shape[-1]
    out = x
    if normalize:
        mu = x.mean(-1, keepdim=True)
        sd = x.std(-1, keepdim=True) + 1e-5
        out = (x - mu) / sd
    rolled = out
    for k in range(1, num_shifts + 1):
        pick = (shift_class == k).unsqueeze(-1)
        rolled = torch.where(pick, torch.roll(out, shifts=k * c // (num_shifts + 1), dims=-1), rolled)
    if normalize:
        rolled = rolled * sd + mu
    return rolled


ROTATIONS = ("roll", "rot90")
ROT90_CLASSES = 3  # 90, 180, 270 degrees


def rotate_patches(images: torch.Tensor, shift_class: torch.Tensor, patch: int) -> torch.Tensor:
    """Turn each token's `patch` x `patch` pixel block (B 3 H W) by shift_class x 90 degrees (B N, row-major)."""
    b, c, h, w = images.shape
    gh, gw = h // patch, w // patch
    if gh * patch != h or gw * patch != w or gh != gw:
        raise ValueError(f"rot90 corruption needs square images divisible into {patch}-pixel patches, got {h}x{w}")
    blocks = images.reshape(b, c, gh, patch, gw, patch).permute(0, 2, 4, 1, 3, 5)  # B gh gw C p p
    k = shift_class.clamp(min=0).view(b, gh, gw, 1, 1, 1)
    out = blocks
    for turns in range(1, ROT90_CLASSES + 1):
        out = torch.where(k == turns, torch.rot90(blocks, turns, dims=(-2, -1)), out)
    return out.permute(0, 3, 1, 4, 2, 5).reshape(b, c, h, w)


def apply_corruption(tokens: torch.Tensor, corruption: Corruption, mask_embedding: torch.Tensor, num_shifts: int, normalize: bool, roll: bool = True) -> torch.Tensor:
    """tokens: B C H W grid; returns the corrupted grid of the same shape. `roll=False`: mask only (the
    rotation happened to the pixels already)."""
    b, c, h, w = tokens.shape
    seq = tokens.flatten(2).transpose(1, 2)
    if roll:
        seq = roll_tokens(seq, corruption.shift_class.clamp(min=0), num_shifts, normalize)
    seq = torch.where(corruption.mask.unsqueeze(-1), mask_embedding.view(1, 1, c).to(seq.dtype), seq)
    return seq.transpose(1, 2).reshape(b, c, h, w)
