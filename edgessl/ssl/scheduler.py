"""Dynamic Corruption Scheduler: task weights and corruption ratios from an EMA of each task's loss.

Progress r_i = EMA_i / (first EMA_i). Weights follow r (the lagging task gets more weight, normalised
to sum to 2). Every `interval` steps, a task that is nearly solved (r < easy_below) gets more
corruption and one that is not learning (r > hard_above) less, within bounds, so neither runs away.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from edgessl.recipe import SchedulerConfig


@dataclass
class SchedulerState:
    step: int
    mask_ratio: float
    rot_ratio: float
    lambda_rec: float = 1.0
    lambda_rot: float = 1.0
    ema_rec: float | None = None
    ema_rot: float | None = None
    ref_rec: float | None = None
    ref_rot: float | None = None


class DynamicCorruptionScheduler:
    def __init__(self, cfg: SchedulerConfig, mask_ratio: float, rot_ratio: float) -> None:
        self.cfg = cfg
        self.state = SchedulerState(step=0, mask_ratio=mask_ratio, rot_ratio=rot_ratio)
        self.history: list[dict] = [asdict(self.state)]

    def _ema(self, old: float | None, new: float) -> float:
        return new if old is None else self.cfg.ema_decay * old + (1 - self.cfg.ema_decay) * new

    def progress(self) -> tuple[float, float]:
        s = self.state
        if s.ema_rec is None or s.ema_rot is None:
            return 1.0, 1.0
        return s.ema_rec / max(s.ref_rec, 1e-8), s.ema_rot / max(s.ref_rot, 1e-8)

    def update(self, rec_loss: float, rot_loss: float) -> bool:
        """Feed this step's losses; returns True when the ratios or weights changed notably (logged)."""
        s, c = self.state, self.cfg
        s.step += 1
        s.ema_rec = self._ema(s.ema_rec, rec_loss)
        s.ema_rot = self._ema(s.ema_rot, rot_loss)
        if s.step == c.interval:
            s.ref_rec, s.ref_rot = s.ema_rec, s.ema_rot
        if not c.enabled or s.ref_rec is None or s.step % c.interval:
            return False
        r_rec, r_rot = self.progress()
        s.lambda_rec, s.lambda_rot = 2 * r_rec / (r_rec + r_rot), 2 * r_rot / (r_rec + r_rot)
        s.mask_ratio = self._adjust(s.mask_ratio, r_rec, c.mask_bounds, s.rot_ratio)
        s.rot_ratio = self._adjust(s.rot_ratio, r_rot, c.rot_bounds, s.mask_ratio)
        self.history.append(asdict(s))
        return True

    def _adjust(self, ratio: float, progress: float, bounds: tuple[float, float], other: float) -> float:
        c = self.cfg
        if progress < c.easy_below:
            ratio += c.ratio_step
        elif progress > c.hard_above:
            ratio -= c.ratio_step
        ratio = min(max(ratio, bounds[0]), bounds[1], c.max_total - other)
        return round(ratio, 4)

    def state_dict(self) -> dict:
        return {"state": asdict(self.state), "history": self.history}

    def load_state_dict(self, d: dict) -> None:
        self.state = SchedulerState(**d["state"])
        self.history = list(d["history"])
