"""The deployable probe classifier: encoder + global pooling + linear head, in eval form.

Input is NHWC with raw pixel values in [0, 255] (so full-int8 input is simply `pixel - 128`);
normalisation is the model's first op. BatchNorm after a convolution is folded into it.
"""

from __future__ import annotations

import copy
import itertools

import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

from edgessl.data.augment import MEAN, STD
from edgessl.models.tinynext import TinyNeXt


class DeployableClassifier(nn.Module):
    def __init__(self, encoder: TinyNeXt, head: nn.Module) -> None:
        super().__init__()
        self.encoder = encoder
        self.head = head
        self.register_buffer("scale", (1 / (255 * STD)).view(1, 3, 1, 1))
        self.register_buffer("shift", (-MEAN / STD).view(1, 3, 1, 1))

    @property
    def image_size(self) -> int:
        return self.encoder.image_size

    def forward(self, x_nhwc: torch.Tensor) -> torch.Tensor:
        x = x_nhwc.permute(0, 3, 1, 2) * self.scale + self.shift
        return self.head(self.encoder(x))


def fold_batchnorm(model: nn.Module) -> nn.Module:
    """Copy of `model` (eval) with every Conv2d -> BatchNorm2d pair inside a Sequential fused."""
    model = copy.deepcopy(model).eval()
    for module in model.modules():
        if not isinstance(module, nn.Sequential):
            continue
        children = list(module.named_children())
        for (name_a, a), (name_b, b) in itertools.pairwise(children):
            if isinstance(a, nn.Conv2d) and isinstance(b, nn.BatchNorm2d):
                setattr(module, name_a, fuse_conv_bn_eval(a, b))
                setattr(module, name_b, nn.Identity())
    return model


def build_classifier(encoder: TinyNeXt, head: nn.Module, fold: bool = True) -> DeployableClassifier:
    model = DeployableClassifier(copy.deepcopy(encoder), copy.deepcopy(head)).eval()
    return fold_batchnorm(model) if fold else model
