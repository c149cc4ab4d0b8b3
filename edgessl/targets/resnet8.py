"""MLPerf Tiny image-classification reference network (ResNet-8 on 32x32 CIFAR-10, ~12.5 M MACs),
built here so the latency model is checked against published device results with edgessl's own export."""

from __future__ import annotations

import torch
from torch import nn

# MLPerf Tiny v1.0 closed division, image classification (ResNet-8), ST submissions; ms per inference.
PUBLISHED_MS = {"stm32h7a3": (47.0, 52.0), "stm32f746": (61.6, 62.9)}


def _conv_bn(cin: int, cout: int, k: int, stride: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, k, stride, k // 2, bias=False), nn.BatchNorm2d(cout))


class _Stack(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.a = _conv_bn(cin, cout, 3, stride)
        self.b = _conv_bn(cout, cout, 3, 1)
        self.short = _conv_bn(cin, cout, 1, stride) if stride != 1 or cin != cout else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.b(torch.relu(self.a(x))) + self.short(x))


class ResNet8(nn.Module):
    """Input NHWC raw pixels like edgessl's classifiers."""

    def __init__(self, classes: int = 10) -> None:
        super().__init__()
        self.stem = _conv_bn(3, 16, 3, 1)
        self.stacks = nn.Sequential(_Stack(16, 16, 1), _Stack(16, 32, 2), _Stack(32, 64, 2))
        self.fc = nn.Linear(64, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.stem(x.permute(0, 3, 1, 2) / 255.0))
        return self.fc(self.stacks(x).mean(dim=(2, 3)))
