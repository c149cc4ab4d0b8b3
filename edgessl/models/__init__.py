"""Model registry: create encoders by name, timm style."""

from __future__ import annotations

from edgessl.models.tinynext import CONFIGS, TinyNeXt, build_tinynext, use_fused_backward

ENCODER_LIMIT_PARAMS = 1_000_000


def list_models() -> list[str]:
    return sorted(CONFIGS)


def create_encoder(name: str, image_size: int = 32) -> TinyNeXt:
    if name not in CONFIGS:
        raise ValueError(f"unknown encoder {name!r}; known: {', '.join(list_models())}")
    return build_tinynext(name, image_size)


def count_params(model: torch.nn.Module) -> int:  # noqa: F821
    return sum(p.numel() for p in model.parameters())


__all__ = ["ENCODER_LIMIT_PARAMS", "TinyNeXt", "count_params", "create_encoder", "list_models", "use_fused_backward"]
