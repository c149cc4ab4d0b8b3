"""The deployable probe classifier: encoder + global pooling (of the probe's stages) + linear head, in eval form.

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
from edgessl.models.tinynext import OUTPUT_STAGES, LeanSingleHeadAttention, TinyNeXt


class DeployableClassifier(nn.Module):
    def __init__(self, encoder: TinyNeXt, head: nn.Module, stages: tuple[str, ...] = OUTPUT_STAGES) -> None:
        super().__init__()
        self.encoder = encoder
        self.head = head
        self.stages = tuple(stages)
        self.register_buffer("scale", (1 / (255 * STD)).view(1, 3, 1, 1))
        self.register_buffer("shift", (-MEAN / STD).view(1, 3, 1, 1))

    @property
    def image_size(self) -> int:
        return self.encoder.image_size

    def forward(self, x_nhwc: torch.Tensor) -> torch.Tensor:
        x = x_nhwc.permute(0, 3, 1, 2) * self.scale + self.shift
        return self.head(self.encoder.pooled_stages(x, self.stages))


def batchnorm_as_depthwise(bn: nn.BatchNorm2d) -> nn.Conv2d:
    """A BatchNorm with no convolution to fold into, as a 1x1 depthwise convolution: in int8 that is one
    op with per-channel weight scales instead of a SUB, MUL, ADD chain that requantizes three times."""
    conv = nn.Conv2d(bn.num_features, bn.num_features, 1, groups=bn.num_features, bias=True)
    scale = bn.weight.detach() / torch.sqrt(bn.running_var + bn.eps)
    with torch.no_grad():
        conv.weight.copy_(scale.view(-1, 1, 1, 1))
        conv.bias.copy_(bn.bias.detach() - bn.running_mean * scale)
    return conv.eval()


def fold_batchnorm(model: nn.Module) -> nn.Module:
    """Copy of `model` (eval): every Conv2d -> BatchNorm2d pair inside a Sequential fused, every other
    BatchNorm2d turned into a depthwise 1x1 conv, and the attention scale folded into the query."""
    model = copy.deepcopy(model).eval()
    for module in list(model.modules()):
        if isinstance(module, nn.Sequential):
            for (name_a, a), (name_b, b) in itertools.pairwise(list(module.named_children())):
                if isinstance(a, nn.Conv2d) and isinstance(b, nn.BatchNorm2d):
                    setattr(module, name_a, fuse_conv_bn_eval(a, b))
                    setattr(module, name_b, nn.Identity())
    for module in list(model.modules()):
        for name, child in list(module.named_children()):
            if isinstance(child, nn.BatchNorm2d):
                setattr(module, name, batchnorm_as_depthwise(child))
        if isinstance(module, LeanSingleHeadAttention) and module.scale != 1.0:
            with torch.no_grad():
                module.query.weight.mul_(module.scale)
            module.scale = 1.0
    return model


def build_classifier(encoder: TinyNeXt, head: nn.Module, fold: bool = True, stages: tuple[str, ...] = OUTPUT_STAGES) -> DeployableClassifier:
    model = DeployableClassifier(copy.deepcopy(encoder), copy.deepcopy(head), stages).eval()
    return fold_batchnorm(model) if fold else model
