"""Batched augmentations on uint8 tensors already in memory (no per-image Python work).

Random resized crop and flip go through one `affine_grid` + `grid_sample` per batch; colour jitter and
grayscale are tensor arithmetic. Everything runs on the batch's device.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

MEAN = torch.tensor([0.4914, 0.4822, 0.4465]).view(1, 3, 1, 1)
STD = torch.tensor([0.2470, 0.2435, 0.2616]).view(1, 3, 1, 1)
LUMA = (0.299, 0.587, 0.114)  # Rec. 601 weights of R, G, B in brightness


@dataclass
class AugmentConfig:
    crop_scale: tuple[float, float] = (0.2, 1.0)
    flip: bool = True
    jitter: float = 0.4  # brightness/contrast/saturation strength
    jitter_prob: float = 0.8
    gray_prob: float = 0.2
    hue: float = 0.0  # max hue turn, fraction of a full circle (SimCLR's CIFAR setting: 0.1)


@torch.compiler.disable  # pinned host memory has no fake-tensor kernel: torch.compile (compile=true) runs this eagerly
def to_device(t: torch.Tensor, device: torch.device) -> torch.Tensor:
    """Host-drawn random numbers to the batch's device. A plain copy from pageable memory waits for the GPU
    queue to drain (a dozen stalls per step); from pinned memory it is queued like a kernel."""
    if device.type != "cuda":
        return t.to(device)
    return t.pin_memory().to(device, non_blocking=True)


def to_float(images_u8: torch.Tensor) -> torch.Tensor:
    """N H W 3 uint8 -> N 3 H W float in [0, 1]."""
    return images_u8.permute(0, 3, 1, 2).float().div_(255)


@functools.cache
def _channel_stats(device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """MEAN and STD on `device`, copied there once rather than for every view."""
    return to_device(MEAN, device), to_device(STD, device)


def normalize(x: torch.Tensor) -> torch.Tensor:
    mean, std = _channel_stats(x.device)
    return (x - mean) / std


def random_resized_crop(x: torch.Tensor, scale: tuple[float, float], flip: bool, gen: torch.Generator | None = None, size: int | None = None) -> torch.Tensor:
    """`size`: output side in pixels (default: the input's)."""
    n = x.shape[0]
    dev = x.device
    area = torch.empty(n).uniform_(*scale, generator=gen)
    log_ratio = torch.empty(n).uniform_(math.log(3 / 4), math.log(4 / 3), generator=gen)
    ratio = log_ratio.exp()
    sw = (area * ratio).sqrt().clamp(max=1.0)
    sh = (area / ratio).sqrt().clamp(max=1.0)
    cx = (torch.rand(n, generator=gen) * 2 - 1) * (1 - sw)
    cy = (torch.rand(n, generator=gen) * 2 - 1) * (1 - sh)
    sign = torch.where(torch.rand(n, generator=gen) < 0.5, -1.0, 1.0) if flip else torch.ones(n)
    theta = torch.zeros(n, 2, 3)
    theta[:, 0, 0] = sw * sign
    theta[:, 0, 2] = cx
    theta[:, 1, 1] = sh
    theta[:, 1, 2] = cy
    out_shape = [n, x.shape[1], size or x.shape[2], size or x.shape[3]]
    grid = F.affine_grid(to_device(theta, dev), out_shape, align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)


def luma(x: torch.Tensor) -> torch.Tensor:
    """B 3 H W -> B 1 H W brightness."""
    return LUMA[0] * x[:, :1] + LUMA[1] * x[:, 1:2] + LUMA[2] * x[:, 2:3]


def color_jitter(x: torch.Tensor, strength: float, prob: float, gen: torch.Generator | None = None) -> torch.Tensor:
    n = x.shape[0]

    def factor() -> torch.Tensor:
        f = 1 + (torch.rand(n, 1, 1, 1, generator=gen) * 2 - 1) * strength
        apply = torch.rand(n, 1, 1, 1, generator=gen) < prob
        return to_device(torch.where(apply, f, torch.ones_like(f)), x.device)

    x = x * factor()
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    x = (x - mean) * factor() + mean
    gray = luma(x)
    x = (x - gray) * factor() + gray
    return x.clamp_(0, 1)


# RGB <-> YIQ: a hue change is a rotation of the (I, Q) chroma plane; one 3x3 matrix per image.
_RGB_TO_YIQ = torch.tensor([LUMA, [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]])
_YIQ_TO_RGB = torch.linalg.inv(_RGB_TO_YIQ)


def hue_jitter(x: torch.Tensor, max_turn: float, prob: float, gen: torch.Generator | None = None) -> torch.Tensor:
    """Turn each image's hue by a uniform angle in +-max_turn x 360 degrees (with probability `prob`), so
    that two views cannot be matched by their colour alone."""
    n = x.shape[0]
    angle = (torch.rand(n, generator=gen) * 2 - 1) * max_turn * 2 * math.pi
    angle = torch.where(torch.rand(n, generator=gen) < prob, angle, torch.zeros_like(angle))
    cos, sin = angle.cos(), angle.sin()
    turn = torch.zeros(n, 3, 3)
    turn[:, 0, 0] = 1
    turn[:, 1, 1], turn[:, 1, 2], turn[:, 2, 1], turn[:, 2, 2] = cos, -sin, sin, cos
    matrix = _YIQ_TO_RGB @ turn @ _RGB_TO_YIQ  # n 3 3, RGB -> RGB
    out = torch.einsum("nij,njhw->nihw", to_device(matrix, x.device).to(x.dtype), x)
    return out.clamp_(0, 1)


def random_grayscale(x: torch.Tensor, prob: float, gen: torch.Generator | None = None) -> torch.Tensor:
    gray = luma(x).expand_as(x)
    pick = to_device(torch.rand(x.shape[0], 1, 1, 1, generator=gen) < prob, x.device)
    return torch.where(pick, gray, x)


def ssl_view(images_u8: torch.Tensor, cfg: AugmentConfig, gen: torch.Generator | None = None, size: int | None = None) -> torch.Tensor:
    x = to_float(images_u8)
    x = random_resized_crop(x, cfg.crop_scale, cfg.flip, gen, size)
    if cfg.jitter > 0:
        x = color_jitter(x, cfg.jitter, cfg.jitter_prob, gen)
    if cfg.hue > 0:
        x = hue_jitter(x, cfg.hue, cfg.jitter_prob, gen)
    if cfg.gray_prob > 0:
        x = random_grayscale(x, cfg.gray_prob, gen)
    return normalize(x)


def supervised_view(images_u8: torch.Tensor, gen: torch.Generator | None = None) -> torch.Tensor:
    """Crop + flip, the standard supervised CIFAR augmentation (pad-4 crop ~ scale 0.77-1)."""
    x = random_resized_crop(to_float(images_u8), (0.6, 1.0), True, gen)
    return normalize(x)


def eval_view(images_u8: torch.Tensor) -> torch.Tensor:
    return normalize(to_float(images_u8))
