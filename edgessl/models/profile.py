"""Parameter and MAC counts per image, from forward hooks (convolutions, linear layers, matmuls)."""

from __future__ import annotations

import torch
from torch import nn


def count_macs(model: nn.Module, image_size: int) -> int:
    """Multiply-accumulates for one image: conv, linear, and the attention matmuls."""
    total = 0

    def conv_hook(m: nn.Conv2d, _inp: tuple, out: torch.Tensor) -> None:
        nonlocal total
        k = m.kernel_size[0] * m.kernel_size[1] * (m.in_channels // m.groups)
        total += out[0].numel() * k

    def linear_hook(m: nn.Linear, _inp: tuple, out: torch.Tensor) -> None:
        nonlocal total
        total += out[0].numel() * m.in_features

    handles = []
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            handles.append(m.register_forward_hook(conv_hook))
        elif isinstance(m, nn.Linear):
            handles.append(m.register_forward_hook(linear_hook))
    original_bmm = torch.bmm

    def counting_bmm(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        nonlocal total
        total += a.shape[1] * a.shape[2] * b.shape[2]  # per image (batch of 1)
        return original_bmm(a, b)

    torch.bmm = counting_bmm
    try:
        was_training = model.training
        model.eval()
        with torch.no_grad():
            model(torch.zeros(1, 3, image_size, image_size))
        model.train(was_training)
    finally:
        torch.bmm = original_bmm
        for h in handles:
            h.remove()
    return total
