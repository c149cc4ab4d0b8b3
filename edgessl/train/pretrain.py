"""The pretraining loop: batched augmentation, dual-corruption losses, scheduler, atomic resumable checkpoints."""

from __future__ import annotations

import csv
import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from edgessl.data.augment import AugmentConfig, ssl_view
from edgessl.data.cache import load_split
from edgessl.models import create_encoder
from edgessl.recipe import Recipe
from edgessl.ssl.dual_corruption import DualCorruptionSSL
from edgessl.ssl.scheduler import DynamicCorruptionScheduler
from edgessl.train.checkpoint import encoder_payload, load, save_atomic
from edgessl.train.progress import Progress

METRIC_KEYS = ("loss", "rec", "rot", "dis", "vic", "rot_acc")


@dataclass
class PretrainResult:
    out_dir: Path
    encoder_path: Path
    steps: int
    wall_seconds: float
    compute_seconds: float
    data_seconds: float


def lr_at(step: int, total: int, warmup: int, base: float) -> float:
    if step < warmup:
        return base * (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return base * 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))


def setup_torch(recipe: Recipe) -> torch.device:
    torch.manual_seed(recipe.seed)
    if recipe.threads > 0:
        torch.set_num_threads(recipe.threads)
    return torch.device(recipe.device)


class MetricsLog:
    """metrics.csv always; TensorBoard when it is installed."""

    def __init__(self, out: Path, append: bool) -> None:
        self.path = out / "metrics.csv"
        fields = ["step", "epoch", "lr", *METRIC_KEYS, "mask_ratio", "rot_ratio", "lambda_rec", "lambda_rot", "img_per_s"]
        new = not (append and self.path.is_file())
        self.file = self.path.open("w" if new else "a", newline="")
        self.writer = csv.DictWriter(self.file, fieldnames=fields, extrasaction="ignore")
        if new:
            self.writer.writeheader()
        try:
            from torch.utils.tensorboard import SummaryWriter

            self.tb = SummaryWriter(str(out / "tensorboard"))
        except ImportError:
            self.tb = None

    def write(self, row: dict) -> None:
        self.writer.writerow(row)
        self.file.flush()
        if self.tb is not None:
            for k, v in row.items():
                if k not in ("step", "epoch") and isinstance(v, float | int):
                    self.tb.add_scalar(f"pretrain/{k}", v, row["step"])

    def close(self) -> None:
        self.file.close()
        if self.tb is not None:
            self.tb.close()


def pretrain(recipe: Recipe, out_dir: Path, resume: bool = False, on_step: Callable[[int], None] | None = None) -> PretrainResult:
    """Train; `resume` continues from out_dir/last.pt. `on_step(step)` is called after every optimiser step."""
    device = setup_torch(recipe)
    out_dir.mkdir(parents=True, exist_ok=True)
    data = load_split(recipe.data.path, "train", recipe.data.image_size)
    images = torch.from_numpy(data.images)
    encoder = create_encoder(recipe.encoder, recipe.data.image_size)
    method = DualCorruptionSSL(encoder, recipe).to(device, memory_format=torch.channels_last)
    params = [p for p in method.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=recipe.optim.lr, weight_decay=recipe.optim.weight_decay)
    sched = DynamicCorruptionScheduler(recipe.scheduler, recipe.corruption.mask_ratio, recipe.corruption.rot_ratio)
    aug = AugmentConfig(crop_scale=(recipe.augment.crop_min_scale, 1.0), jitter=recipe.augment.jitter, gray_prob=recipe.augment.gray_prob)
    gen = torch.Generator().manual_seed(recipe.seed)

    batch = min(recipe.optim.batch_size, len(images))
    steps_per_epoch = len(images) // batch
    total = steps_per_epoch * recipe.optim.epochs
    warmup = int(recipe.optim.warmup_epochs * steps_per_epoch)
    step = 0
    last_path = out_dir / "last.pt"
    if resume and last_path.is_file():
        state = load(last_path)
        method.load_state_dict(state["method"])
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        gen.set_state(state["generator"])
        step = state["step"]
        print(f"resumed from {last_path} at step {step}/{total}", flush=True)
    (out_dir / "recipe.json").write_text(json.dumps(recipe.to_dict(), indent=2))

    def save_state() -> None:
        state = {
            "method": method.state_dict(),
            "optimizer": opt.state_dict(),
            "scheduler": sched.state_dict(),
            "generator": gen.get_state(),
            "step": step,
        }
        save_atomic(state, last_path)

    log = MetricsLog(out_dir, append=resume)
    progress = Progress(total, step, batch, recipe.log_every)
    t_start = time.perf_counter()
    compute_s = data_s = 0.0
    perm, perm_epoch = None, -1
    method.train()
    while step < total:
        epoch = step // steps_per_epoch
        if epoch != perm_epoch:  # the order of an epoch depends only on (seed, epoch): resume lands mid-epoch exactly
            perm = torch.randperm(len(images), generator=torch.Generator().manual_seed(recipe.seed * 1000 + epoch))
            perm_epoch = epoch
        t0 = time.perf_counter()
        i = step % steps_per_epoch
        idx = perm[i * batch : (i + 1) * batch]
        raw = images[idx].to(device)
        views = [ssl_view(raw, aug, gen).contiguous(memory_format=torch.channels_last) for _ in range(method.views_needed())]
        t1 = time.perf_counter()
        for g in opt.param_groups:
            g["lr"] = lr_at(step, total, warmup, recipe.optim.lr)
        s = sched.state
        losses = method(views, s.mask_ratio, s.rot_ratio, gen)
        loss = method.total_loss(losses, s.lambda_rec, s.lambda_rot)
        if not torch.isfinite(loss):
            raise FloatingPointError(f"loss is {loss.item()} at step {step}; last good checkpoint: {last_path}")
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, recipe.optim.grad_clip)
        opt.step()
        method.update_teacher()
        values = {k: float(v.detach()) for k, v in losses.items()} | {"loss": float(loss.detach())}
        changed = sched.update(values["rec"], values["rot"])
        step += 1
        t2 = time.perf_counter()
        data_s += t1 - t0
        compute_s += t2 - t1
        progress.advance(f"loss {values['loss']:.3f} rec {values['rec']:.3f} rot {values['rot']:.3f} acc {values['rot_acc']:.2f}")
        if changed or step % recipe.log_every == 0 or step == total:
            log.write({"step": step, "epoch": epoch, "lr": opt.param_groups[0]["lr"], **values, **_sched_row(sched), "img_per_s": progress.rate()})
        if step % recipe.checkpoint_every_steps == 0 or step % steps_per_epoch == 0:
            save_state()
        if on_step is not None:
            on_step(step)
    progress.close()
    log.close()
    save_state()
    wall = time.perf_counter() - t_start
    encoder_path = out_dir / "encoder.pt"
    save_atomic(
        encoder_payload(method.encoder, recipe.encoder, recipe.data.image_size, recipe.to_dict(), {"classes": data.classes, "steps": step}),
        encoder_path,
    )
    (out_dir / "scheduler.json").write_text(json.dumps(sched.history, indent=1))
    plot_scheduler(sched.history, out_dir / "scheduler.png")
    return PretrainResult(out_dir, encoder_path, step, wall, compute_s, data_s)


def _sched_row(sched: DynamicCorruptionScheduler) -> dict:
    s = sched.state
    return {"mask_ratio": s.mask_ratio, "rot_ratio": s.rot_ratio, "lambda_rec": s.lambda_rec, "lambda_rot": s.lambda_rot}


def plot_scheduler(history: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps = np.array([h["step"] for h in history])
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.2))
    for key in ("mask_ratio", "rot_ratio"):
        axes[0].plot(steps, [h[key] for h in history], label=key)
    for key in ("lambda_rec", "lambda_rot"):
        axes[1].plot(steps, [h[key] for h in history], label=key)
    for key in ("ema_rec", "ema_rot"):
        axes[2].plot(steps, [h[key] if h[key] is not None else np.nan for h in history], label=key)
    for ax, title in zip(axes, ("corruption ratios", "task weights", "loss EMAs"), strict=True):
        ax.set_title(title)
        ax.set_xlabel("step")
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
