"""Progress with img/s and ETA: a rich bar on a terminal, periodic plain lines in logs and CI."""

from __future__ import annotations

import math
import sys
import time


class Progress:
    def __init__(self, total_steps: int, start_step: int, batch_size: int, every: int = 20, seconds_left: float = math.inf, label: str = "pretrain") -> None:
        """`seconds_left`: the time budget left (optim.max_minutes), which ends the run first when the steps would take longer."""
        self.total, self.step, self.batch = total_steps, start_step, batch_size
        self.seconds_left = seconds_left
        self.every = every
        self.t0 = time.perf_counter()
        self.start = start_step
        self.tty = sys.stdout.isatty()
        self._bar = None
        if self.tty:
            from rich.progress import BarColumn, TextColumn, TimeRemainingColumn
            from rich.progress import Progress as RichProgress

            self._bar = RichProgress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.fields[info]}"), TimeRemainingColumn())
            self._task = self._bar.add_task(label, total=total_steps, completed=start_step, info="")
            self._bar.start()

    def rate(self) -> float:
        done = self.step - self.start
        return done * self.batch / max(time.perf_counter() - self.t0, 1e-9)

    def advance(self, info: str) -> None:
        self.step += 1
        rate = self.rate()
        eta = max(0.0, min((self.total - self.step) * self.batch / max(rate, 1e-9), self.seconds_left - (time.perf_counter() - self.t0)))
        text = f"{rate:6.0f} img/s  {info}"
        if self._bar is not None:
            self._bar.update(self._task, completed=self.step, info=text)
        elif self.step % self.every == 0 or self.step == self.total:
            print(f"step {self.step}/{self.total}  {text}  eta {eta / 60:5.1f} min", flush=True)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()
