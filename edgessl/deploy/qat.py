"""Quantization-aware finetuning with NNCF on the labelled subset only.

NNCF inserts int8 fake-quantizers (per-channel weights, per-tensor activations, symmetric/asymmetric
as the TFLite int8 spec wants) into the BN-folded classifier; we then train through them. No tested
path carries NNCF's ranges into TFLite, so the trained float weights go back into the plain
classifier and the TFLite exporter recalibrates on real images (the report says so).
"""

from __future__ import annotations

import copy
import math
import os
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from edgessl.data.augment import random_resized_crop
from edgessl.train.allocator import keep_freed_memory

# What benchmarks/deploy.py measures (e.g. 77.73 % fp32 -> 77.91 % int8 in TFLite Micro): the CLI's defaults too.
QAT_EPOCHS = 2
QAT_LR = 1e-4


@dataclass
class QATResult:
    model: nn.Module  # float classifier with the QAT-trained weights
    fake_quant: nn.Module  # the NNCF model, for fake-quant evaluation
    steps: int


def _augment_nhwc(images: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Crop + flip on raw-pixel NHWC batches (the classifier normalises inside)."""
    x = images.permute(0, 3, 1, 2).float()
    return random_resized_crop(x, (0.6, 1.0), True, gen).permute(0, 2, 3, 1).contiguous()


def copy_trained_weights(qat_model: nn.Module, float_model: nn.Module) -> nn.Module:
    """Parameters and buffers of the NNCF model (same names, maybe prefixed) into a copy of the float model."""
    trained = qat_model.state_dict()
    out = copy.deepcopy(float_model)
    state = out.state_dict()
    for name in state:
        match = [k for k in trained if k == name or k.endswith("." + name)]
        if not match:
            raise KeyError(f"QAT model has no tensor for {name}")
        state[name] = trained[match[0]].detach().clone()
    out.load_state_dict(state)
    return out


def qat_finetune(
    model: nn.Module,
    images: np.ndarray,
    labels: np.ndarray,
    epochs: int = QAT_EPOCHS,
    lr: float = QAT_LR,
    batch_size: int = 64,
    freeze_encoder: bool = False,
    seed: int = 0,
) -> QATResult:
    # NNCF compiles its fake-quantize kernels on first use (once per environment) and gives up after 60 s by
    # default: a loaded 2-core machine took longer and the QAT failed. A slow first run beats a failed one;
    # the user's own NNCF_EXTENSION_LOAD_TIMEOUT wins.
    os.environ.setdefault("NNCF_EXTENSION_LOAD_TIMEOUT", "900")
    import nncf

    keep_freed_memory()
    torch.manual_seed(seed)
    model = copy.deepcopy(model).eval()
    x_all, y_all = torch.from_numpy(images), torch.from_numpy(labels)
    calib = [x_all[i : i + 32].float() for i in range(0, min(len(x_all), 512), 32)]
    # NNCF counts dataset items, here batches of 32: subset_size=len(calib) is all of them (every quantizer and bias
    # identical to subset_size=512, checked), without the warning that 16 "samples" fall short of 512.
    qmodel = nncf.quantize(model, nncf.Dataset(calib), subset_size=len(calib))
    params = [p for n, p in qmodel.named_parameters() if not (freeze_encoder and "encoder" in n)]
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=0.0)
    steps_per_epoch = math.ceil(len(x_all) / batch_size)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, max(1, epochs * steps_per_epoch))
    gen = torch.Generator().manual_seed(seed)
    qmodel.train()
    for m in qmodel.modules():  # BatchNorm stays frozen: running statistics are what int8 folds in
        if isinstance(m, nn.BatchNorm2d):
            m.eval()
    steps = 0
    for _ in range(epochs):
        for idx in torch.randperm(len(x_all), generator=gen).split(batch_size):
            loss = F.cross_entropy(qmodel(_augment_nhwc(x_all[idx], gen)), y_all[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)  # BN-folded weights are sensitive: keep steps small
            opt.step()
            sched.step()
            steps += 1
    qmodel.eval()
    return QATResult(copy_trained_weights(qmodel, model), qmodel, steps)
