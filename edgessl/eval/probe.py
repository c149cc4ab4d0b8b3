"""Linear probe: frozen encoder, pooled features, a linear classifier trained on a label-fraction subset."""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from edgessl.data.readers import ImageArrays
from edgessl.data.splits import label_fraction_indices
from edgessl.eval.features import extract_features
from edgessl.models import TinyNeXt
from edgessl.models.tinynext import OUTPUT_STAGES
from edgessl.recipe import ProbeConfig

DEFAULT_WEIGHT_DECAY = 5e-4
HELD_OUT = 0.2  # share of each class's labelled images that selects the weight decay (`probe.weight_decays`)
SHIFT_DIVISOR = 8  # augmented copies are shifted by up to image_size / 8 pixels (4 at 32x32)
SOLVERS = ("adamw", "lbfgs")  # `probe.solver`: mini-batch AdamW (weight decay) or full-batch L-BFGS (an L2 penalty)
LBFGS_ITERATIONS = 500


@dataclass
class ProbeResult:
    top1: float
    label_fraction: float
    train_images: int
    test_images: int
    epochs: int
    seed: int
    feature_norm: str = "standardised with train-subset mean/std"
    stages: tuple[str, ...] = OUTPUT_STAGES  # whose pooled outputs are the features (stage4: the encoder's output)
    weight_decay: float = DEFAULT_WEIGHT_DECAY
    held_out_top1: dict[str, float] | None = None  # candidate weight decay -> top-1 on the held-out labelled images
    augment_copies: int = 0  # augmented copies of each labelled image the head also trains on (`augmented_copies`)
    solver: str = "adamw"

    def protocol(self) -> str:
        features = "features" if self.stages == OUTPUT_STAGES else f"pooled {' + '.join(self.stages)} features"
        fit = f"{self.epochs} epochs" if self.solver == "adamw" else f"L-BFGS logistic regression (up to {LBFGS_ITERATIONS} iterations)"
        text = f"linear probe: seed {self.seed}, label fraction {self.label_fraction:g} ({self.train_images} labelled images), {fit}, {features} {self.feature_norm}, "
        if self.augment_copies:
            text += f"trained on each labelled image and {self.augment_copies} augmented copies (mirror, then shifts of up to 1/{SHIFT_DIVISOR} of the side, mirrored at random), "
        if self.held_out_top1:
            candidates = " / ".join(self.held_out_top1)
            penalty = "weight decay" if self.solver == "adamw" else "L2 penalty"
            text += f"{penalty} {self.weight_decay:g} chosen from {candidates} on a held-out {HELD_OUT:.0%} of the labelled images, "
        return text + f"top-1 on {self.test_images} test images"

    def to_dict(self) -> dict:
        return asdict(self)


def train_linear(feats: torch.Tensor, labels: torch.Tensor, classes: int, epochs: int, seed: int, weight_decay: float = DEFAULT_WEIGHT_DECAY, solver: str = "adamw") -> nn.Linear:
    """Fit a linear layer on standardised features with `solver` (SOLVERS); `weight_decay` is its regulariser."""
    if solver not in SOLVERS:
        raise ValueError(f"unknown probe solver {solver!r}; known: {', '.join(SOLVERS)}")
    torch.manual_seed(seed)
    head = nn.Linear(feats.shape[1], classes)
    if solver == "lbfgs":
        return _fit_lbfgs(head, feats, labels, weight_decay)
    return _fit_adamw(head, feats, labels, epochs, seed, weight_decay)


def _fit_lbfgs(head: nn.Linear, feats: torch.Tensor, labels: torch.Tensor, l2: float) -> nn.Linear:
    """Multinomial logistic regression to convergence: mean cross-entropy + l2 * ||W||^2 (bias unpenalised),
    full-batch L-BFGS with a strong-Wolfe line search. Unlike the mini-batch head it has no learning rate or
    epoch count to tune and ends at the regularised optimum (+0.31 points on a 2-hour CIFAR-10 encoder: benchmarks/results/README.md)."""
    opt = torch.optim.LBFGS(head.parameters(), max_iter=LBFGS_ITERATIONS, history_size=20, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = F.cross_entropy(head(feats), labels) + l2 * head.weight.square().sum()
        loss.backward()
        return loss

    opt.step(closure)
    return head


def _fit_adamw(head: nn.Linear, feats: torch.Tensor, labels: torch.Tensor, epochs: int, seed: int, weight_decay: float) -> nn.Linear:
    """Mini-batch AdamW with cosine decay."""
    opt = torch.optim.AdamW(head.parameters(), lr=1e-2, weight_decay=weight_decay)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, epochs)
    gen = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        for idx in torch.randperm(len(feats), generator=gen).split(256):
            loss = F.cross_entropy(head(feats[idx]), labels[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
        sched.step()
    return head


class ProbeHead(nn.Module):
    """Standardise pooled features, then a linear layer. Kept as two ops on purpose: folding 1/std into
    the weights blows up the weights of low-variance features and ruins their int8 per-channel scale."""

    def __init__(self, features: int, classes: int) -> None:
        super().__init__()
        self.register_buffer("mean", torch.zeros(features))
        self.register_buffer("inv_std", torch.ones(features))
        self.linear = nn.Linear(features, classes)

    @classmethod
    def from_linear(cls, linear: nn.Linear, mean: torch.Tensor, std: torch.Tensor) -> ProbeHead:
        head = cls(linear.in_features, linear.out_features)
        head.mean.copy_(mean)
        head.inv_std.copy_(1 / std)
        head.linear.load_state_dict(linear.state_dict())
        return head

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear((x - self.mean) * self.inv_std)


def linear_probe(
    encoder: TinyNeXt,
    train: ImageArrays,
    test: ImageArrays,
    fraction: float,
    epochs: int = 100,
    seed: int = 0,
    device: str = "cpu",
    stages: tuple[str, ...] = OUTPUT_STAGES,
    weight_decays: tuple[float, ...] = (),
    augment_copies: int = 0,
    solver: str = "adamw",
) -> tuple[ProbeResult, ProbeHead, np.ndarray]:
    """Returns the result, the classifier on raw pooled features of `stages`, and the labelled indices used.
    `weight_decays`: candidates chosen between on held-out labelled images (`select_weight_decay`); empty keeps 5e-4.
    `augment_copies`: the head also trains on that many augmented copies of each labelled image (`augmented_copies`).
    `solver`: how the linear layer is fitted (SOLVERS; `train_linear`)."""
    if not train.labelled or not test.labelled:
        raise ValueError("the linear probe needs labels in both splits (class sub-folders or .cls entries)")
    indices = label_fraction_indices(train.labels, fraction, seed)
    labelled = train.images[indices]
    views = [labelled, *augmented_copies(labelled, augment_copies, seed)]
    f_views = torch.stack([extract_features(encoder, v, device=device, stages=stages) for v in views])  # copies x images x features
    f_test = extract_features(encoder, test.images, device=device, stages=stages)
    classes = int(max(train.labels.max(), test.labels.max())) + 1
    y_train = train.labels[indices]
    weight_decay, held_out = DEFAULT_WEIGHT_DECAY, None
    if weight_decays:
        weight_decay, held_out = select_weight_decay(f_views, y_train, classes, epochs, seed, weight_decays, solver)
    top1, head = fit_probe(*_flatten(f_views, y_train), f_test, test.labels, classes, epochs, seed, weight_decay, solver)
    result = ProbeResult(top1, fraction, len(indices), len(test), epochs, seed, stages=tuple(stages), weight_decay=weight_decay, held_out_top1=held_out,
                         augment_copies=augment_copies, solver=solver)  # fmt: skip
    return result, head, indices


def probe_with(encoder: TinyNeXt, train: ImageArrays, test: ImageArrays, config: ProbeConfig, device: str = "cpu", **overrides: Any) -> tuple[ProbeResult, ProbeHead, np.ndarray]:
    """`linear_probe` with a recipe's probe settings. `overrides` replace `config` fields (seed, stages, augment_copies)
    where a caller departs from the recipe on purpose, so that each departure is named at the call."""
    c = replace(config, **overrides)
    return linear_probe(encoder, train, test, c.label_fraction, c.epochs, c.seed, device, c.stages, c.weight_decays, c.augment_copies, c.solver)


def augmented_copies(images: np.ndarray, copies: int, seed: int) -> list[np.ndarray]:
    """The probe's training augmentation, as in SimCLR's linear evaluation (crop + flip), on uint8 NHWC images:
    the first copy is the mirror image, later ones are shifted by up to side / SHIFT_DIVISOR pixels (reflect
    padding) and mirrored at random, a seeded draw per image (what it buys: benchmarks/results/README.md)."""
    if copies <= 0:
        return []
    n, h, w, _ = images.shape
    shift = max(1, h // SHIFT_DIVISOR)
    padded = np.pad(images, ((0, 0), (shift, shift), (shift, shift), (0, 0)), mode="reflect")
    rng = np.random.default_rng(seed + 2)
    out = [np.ascontiguousarray(images[:, :, ::-1])]
    for _ in range(copies - 1):
        dy, dx = rng.integers(0, 2 * shift + 1, (2, n))
        mirror = rng.random(n) < 0.5
        copy = np.stack([padded[i, dy[i] : dy[i] + h, dx[i] : dx[i] + w] for i in range(n)])
        copy[mirror] = copy[mirror][:, :, ::-1]
        out.append(copy)
    return out


def _flatten(f_views: torch.Tensor, labels: np.ndarray) -> tuple[torch.Tensor, np.ndarray]:
    """copies x images x features -> (copies * images) x features, with the labels repeated to match."""
    return f_views.flatten(0, 1), np.tile(labels, f_views.shape[0])


def select_weight_decay(
    f_views: torch.Tensor, y_train: np.ndarray, classes: int, epochs: int, seed: int, candidates: tuple[float, ...], solver: str = "adamw"
) -> tuple[float, dict[str, float]]:
    """Fit each candidate on the labelled images less a stratified HELD_OUT share and keep the best top-1 on that
    share, so the test split never picks it. Why: the fixed 5e-4 under-regularises a 200-class probe on 50 labels
    a class (Tiny-ImageNet at 20 %: section tinyimagenet_64ep_nogrl_wd of benchmarks/results/ssl_protocol.md).
    `f_views`: copies x images x features; a held-out image's augmented copies stay out of the fit, and the held-out
    share is scored on the unaugmented images. Returns the choice and every candidate's held-out top-1."""
    held = np.zeros(len(y_train), dtype=bool)
    held[label_fraction_indices(y_train, HELD_OUT, seed + 1)] = True
    fit, val = torch.from_numpy(~held), torch.from_numpy(held)
    f_fit, y_fit = _flatten(f_views[:, fit], y_train[~held])
    scores = [round(fit_probe(f_fit, y_fit, f_views[0, val], y_train[held], classes, epochs, seed, wd, solver)[0], 2) for wd in candidates]
    best = scores.index(max(scores))  # equal scores keep the earlier candidate
    return candidates[best], {f"{wd:g}": score for wd, score in zip(candidates, scores, strict=True)}


def fit_probe(
    f_train: torch.Tensor,
    y_train: np.ndarray,
    f_test: torch.Tensor,
    y_test: np.ndarray,
    classes: int,
    epochs: int,
    seed: int,
    weight_decay: float = DEFAULT_WEIGHT_DECAY,
    solver: str = "adamw",
) -> tuple[float, ProbeHead]:
    """Standardise with train statistics, fit the linear layer; returns test top-1 (%) and the head."""
    mean, std = f_train.mean(0), f_train.std(0) + 1e-6
    head = train_linear((f_train - mean) / std, torch.from_numpy(y_train), classes, epochs, seed, weight_decay, solver)
    deploy_head = ProbeHead.from_linear(head, mean, std)
    with torch.no_grad():
        pred = deploy_head(f_test).argmax(1).numpy()
    return float((pred == y_test).mean() * 100), deploy_head
