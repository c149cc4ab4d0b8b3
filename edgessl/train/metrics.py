"""What a pretraining run logs: metrics.csv (and TensorBoard when installed) and the corruption scheduler's plot."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from edgessl.ssl.scheduler import DynamicCorruptionScheduler

METRIC_KEYS = ("loss", "rec", "rot", "dis", "vic", "rot_acc")


class MetricsLog:
    """metrics.csv always; TensorBoard when it is installed."""

    def __init__(self, out: Path, append: bool, after_step: int = 0) -> None:
        self.path = out / "metrics.csv"
        fields = ["step", "epoch", "lr", *METRIC_KEYS, "mask_ratio", "rot_ratio", "lambda_rec", "lambda_rot", "img_per_s"]
        new = not (append and self.path.is_file())
        if not new:
            _truncate_after(self.path, after_step)
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


def _truncate_after(path: Path, step: int) -> None:
    """Resume: rows logged after the checkpoint we resume from would be logged again; drop them."""
    lines = path.read_text().splitlines(keepends=True)
    kept = lines[:1] + [line for line in lines[1:] if int(line.split(",", 1)[0]) <= step]
    path.write_text("".join(kept))


def scheduler_row(sched: DynamicCorruptionScheduler) -> dict:
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
