"""TinyNeXt encoders (T/S/M): inverted residuals, Lean Single-Head Self-Attention, squeeze-excitation.

Every op maps onto a TFLite Micro builtin: convolutions, BatchNorm (folded at export), the
sigmoid-based GELU approximation, matmul and softmax. Strides adapt to the input size so that
32x32 and 64x64 inputs still end in a 4x4 token grid; strides carry no parameters, so the
parameter count does not depend on the input size.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

GELU_SCALE = 1.702


class _QuickGELUFunction(torch.autograd.Function):
    """Backward is one silu_backward on the saved 1.702 x, instead of autograd's mul, silu_backward, mul:
    two fewer passes over the largest activations (a CPU training step ~7 % faster)."""

    @staticmethod
    def forward(ctx: torch.autograd.function.FunctionCtx, x: torch.Tensor) -> torch.Tensor:
        scaled = x * GELU_SCALE
        ctx.save_for_backward(scaled)
        return F.silu(scaled).mul_(1 / GELU_SCALE)

    @staticmethod
    def backward(ctx: torch.autograd.function.FunctionCtx, grad: torch.Tensor) -> torch.Tensor:
        (scaled,) = ctx.saved_tensors
        return torch.ops.aten.silu_backward(grad, scaled)


class QuickGELU(nn.Module):
    """x * sigmoid(1.702 x): GELU's shape with ops TFLite Micro has (exact GELU exports as Erf).

    `fused_backward` (set by `use_fused_backward`) is for plain training loops only; QAT and export
    trace the module and must see ordinary ops."""

    fused_backward = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.fused_backward and x.requires_grad and torch.is_grad_enabled():
            return _QuickGELUFunction.apply(x)
        # silu(1.702 x) / 1.702 == x * sigmoid(1.702 x), in one fused kernel (~20 % faster CPU training).
        return F.silu(GELU_SCALE * x) * (1 / GELU_SCALE)


def use_fused_backward(model: nn.Module, enabled: bool = True) -> nn.Module:
    """Switch every QuickGELU of `model` to the hand-written backward (same values, fewer memory passes)."""
    for m in model.modules():
        if isinstance(m, QuickGELU):
            m.fused_backward = enabled
    return model


def conv_bn(cin: int, cout: int, k: int = 1, stride: int = 1, groups: int = 1, act: bool = True) -> nn.Sequential:
    layers: list[nn.Module] = [
        nn.Conv2d(cin, cout, k, stride, k // 2, groups=groups, bias=False),
        nn.BatchNorm2d(cout),
    ]
    if act:
        layers.append(QuickGELU())
    return nn.Sequential(*layers)


class SqueezeExcite(nn.Module):
    def __init__(self, channels: int, reduction: int) -> None:
        super().__init__()
        hidden = max(8, channels // reduction)
        self.reduce = nn.Conv2d(channels, hidden, 1)
        self.act = nn.ReLU()
        self.expand = nn.Conv2d(hidden, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = x.mean(dim=(2, 3), keepdim=True)
        return x * torch.sigmoid(self.expand(self.act(self.reduce(s))))


class InvertedResidual(nn.Module):
    """MobileNetV2 block: 1x1 expand, 3x3 depthwise, optional SE, 1x1 project, residual when shapes match."""

    def __init__(self, cin: int, cout: int, stride: int, expand: int, se_reduction: int = 0) -> None:
        super().__init__()
        hidden = cin * expand
        layers: list[nn.Module] = [
            conv_bn(cin, hidden, 1),
            conv_bn(hidden, hidden, 3, stride, groups=hidden),
        ]
        if se_reduction:
            layers.append(SqueezeExcite(hidden, se_reduction))
        layers.append(conv_bn(hidden, cout, 1, act=False))
        self.body = nn.Sequential(*layers)
        self.residual = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.body(x)
        return x + out if self.residual else out


class LeanSingleHeadAttention(nn.Module):
    """One head; query and value are projected, the key is the (normalised) input itself."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.norm = nn.BatchNorm2d(dim)
        self.query = nn.Conv2d(dim, dim, 1, bias=False)
        self.value = nn.Conv2d(dim, dim, 1, bias=False)
        self.proj = conv_bn(dim, dim, 1, act=False)
        self.scale = dim**-0.5

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        y = self.norm(x)
        q = self.query(y).flatten(2).transpose(1, 2)  # B N C
        k = y.flatten(2)  # B C N
        v = self.value(y).flatten(2).transpose(1, 2)  # B N C
        scores = torch.bmm(q, k)
        if self.scale != 1.0:  # deployment folds the scale into `query` (one quantized op fewer)
            scores = scores * self.scale
        attn = torch.softmax(scores, dim=-1)
        out = torch.bmm(attn, v).transpose(1, 2).reshape(b, c, h, w)
        return self.proj(out)


class AttentionBlock(nn.Module):
    """Depthwise local mixing, then LSHSA global mixing, then a 1x1-conv MLP; each residual."""

    def __init__(self, dim: int, mlp_ratio: int) -> None:
        super().__init__()
        self.local = conv_bn(dim, dim, 3, groups=dim, act=False)
        self.attn = LeanSingleHeadAttention(dim)
        self.mlp = nn.Sequential(conv_bn(dim, dim * mlp_ratio, 1), conv_bn(dim * mlp_ratio, dim, 1, act=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.local(x)
        x = x + self.attn(x)
        return x + self.mlp(x)


@dataclass(frozen=True)
class TinyNeXtConfig:
    widths: tuple[int, int, int, int]
    depths: tuple[int, int, int, int]
    stem_width: int = 16
    expand: int = 4  # inverted-residual expansion in stages 1-2
    mlp_ratio: int = 3  # attention-block MLP in stage 3
    se_expand: int = 2  # expansion of the SE blocks in stage 4
    se_reduction: int = 4


CONFIGS: dict[str, TinyNeXtConfig] = {
    "tinynext_t": TinyNeXtConfig(widths=(32, 64, 96, 192), depths=(3, 3, 6, 2)),
    "tinynext_s": TinyNeXtConfig(widths=(48, 96, 144, 288), depths=(3, 3, 9, 3), stem_width=24),
    "tinynext_m": TinyNeXtConfig(widths=(64, 128, 192, 384), depths=(3, 3, 9, 3), stem_width=32),
}


STAGES = ("stage1", "stage2", "stage3", "stage4")
OUTPUT_STAGES = ("stage4",)  # what `forward` pools: the encoder's output, and the published probe protocol


def check_stages(stages: tuple[str, ...]) -> None:
    if not stages or len(set(stages)) != len(stages) or not set(stages) <= set(STAGES):
        raise ValueError(f"stages must be distinct names from {', '.join(STAGES)}; got {list(stages)}")


def parse_stages(text: str) -> tuple[str, ...]:
    """A command line's "stage3,stage4", checked."""
    stages = tuple(text.split(","))
    check_stages(stages)
    return stages


def strides_for_input(image_size: int) -> tuple[int, int, int, int, int, int]:
    """(stem1, stem2, stage1, stage2, stage3, stage4) strides that leave a 4x4 grid for small inputs.

    The ImageNet layout (total stride 32) leaves 1x1 at 32x32; like CIFAR ResNets we drop early
    strides: 32x32 -> total stride 8, 64x64 -> 16, larger inputs keep 32.
    """
    if image_size <= 32:
        return (1, 2, 1, 2, 2, 1)
    if image_size <= 64:
        return (2, 2, 1, 2, 2, 1)
    return (2, 2, 1, 2, 2, 2)


class TinyNeXt(nn.Module):
    """Encoder. `forward` returns pooled features; `forward_tokens` the final token grid (B, D, H, W).

    `stage3_hook` lets a pretext method corrupt the tokens entering the token-mixing stage, so the
    encoder itself has to resolve the corruption.
    """

    def __init__(self, config: TinyNeXtConfig, image_size: int = 32) -> None:
        super().__init__()
        self.config = config
        self.image_size = image_size
        s = strides_for_input(image_size)
        w, d = config.widths, config.depths
        self.stem = nn.Sequential(conv_bn(3, config.stem_width, 3, s[0]), conv_bn(config.stem_width, w[0], 3, s[1]))
        self.stage1 = nn.Sequential(*[InvertedResidual(w[0], w[0], s[2] if i == 0 else 1, config.expand) for i in range(d[0])])
        self.stage2 = nn.Sequential(*[InvertedResidual(w[0] if i == 0 else w[1], w[1], s[3] if i == 0 else 1, config.expand) for i in range(d[1])])
        self.stage3_down = nn.Sequential(conv_bn(w[1], w[1], 3, s[4], groups=w[1], act=False), conv_bn(w[1], w[2], 1))
        self.stage3 = nn.Sequential(*[AttentionBlock(w[2], config.mlp_ratio) for _ in range(d[2])])
        self.stage4 = nn.Sequential(*[InvertedResidual(w[2] if i == 0 else w[3], w[3], s[5] if i == 0 else 1, config.se_expand, config.se_reduction) for i in range(d[3])])
        self.total_stride = s[0] * s[1] * s[2] * s[3] * s[4] * s[5]
        self.feature_dim = w[3]
        self.token_dim = w[2]
        # PyTorch's default init on purpose. With kaiming fan-out init (the CNN habit) the random-init probe
        # gave 31.88 % (benchmarks/results/ablation.md) against 37.69 % now (ssl_protocol.md), and supervised
        # training reached 67.47 % in 30 epochs against 68.68 % now in 20 (label_efficiency.md). Likeliest
        # cause: kaiming makes the initial attention logits 2.4x larger (query std sqrt(2/96) vs 1/sqrt(3*96)).

    def tokens_before_mixing(self, x: torch.Tensor) -> torch.Tensor:
        return self.stage3_down(self.stage2(self.stage1(self.stem(x))))

    def tokens_after_mixing(self, t: torch.Tensor) -> torch.Tensor:
        return self.stage4(self.stage3(t))

    def forward_tokens(self, x: torch.Tensor) -> torch.Tensor:
        return self.tokens_after_mixing(self.tokens_before_mixing(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_tokens(x).mean(dim=(2, 3))

    def pooled_stages(self, x: torch.Tensor, stages: tuple[str, ...] = OUTPUT_STAGES) -> torch.Tensor:
        """Globally pooled outputs of the named stages (of STAGES), concatenated in network order; OUTPUT_STAGES is `forward`.
        A linear probe on stage3 + stage4 reads the token-mixing stage directly, where the pretext tasks act."""
        check_stages(stages)
        if stages == OUTPUT_STAGES:
            return self.forward(x)
        x1 = self.stage1(self.stem(x))
        x2 = self.stage2(x1)
        x3 = self.stage3(self.stage3_down(x2))
        outputs = [x1, x2, x3, self.stage4(x3)] if "stage4" in stages else [x1, x2, x3]
        return torch.cat([out.mean(dim=(2, 3)) for name, out in zip(STAGES, outputs, strict=False) if name in stages], dim=1)

    def pooled_dim(self, stages: tuple[str, ...] = OUTPUT_STAGES) -> int:
        check_stages(stages)
        return sum(self.config.widths[STAGES.index(name)] for name in stages)

    def grid_size(self, image_size: int | None = None) -> int:
        return (image_size or self.image_size) // self.total_stride


def build_tinynext(name: str, image_size: int = 32) -> TinyNeXt:
    return TinyNeXt(CONFIGS[name], image_size=image_size)
