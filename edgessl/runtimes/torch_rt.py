from __future__ import annotations

import numpy as np
import torch

from edgessl.runtimes import package_version


class TorchRuntime:
    name = "pytorch-fp32"

    def __init__(self, model: torch.nn.Module) -> None:
        self.model = model.eval()

    @torch.no_grad()
    def run(self, images: np.ndarray) -> np.ndarray:
        return self.model(torch.from_numpy(images).float()).numpy()

    def version(self) -> str:
        return f"torch {package_version('torch')}"
