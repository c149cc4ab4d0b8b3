"""Learning curve of a pretraining run: the linear probe every `probe.monitor_every` epochs.

Mid-run probes read an encoder whose learning rate has not decayed yet, so they track progress; they
do not predict what a shorter schedule would reach. Their time is logged apart from the training time.
"""

from __future__ import annotations

import time
from pathlib import Path

from torch import nn

from edgessl.data.cache import load_split
from edgessl.data.readers import DataError
from edgessl.eval.probe import probe_with
from edgessl.recipe import Recipe

FIELDS = ("epoch", "step", "top1", "seconds")


class ProbeMonitor:
    def __init__(self, recipe: Recipe, out_dir: Path, resume: bool, device: str) -> None:
        d = recipe.data
        self.recipe, self.device = recipe, device
        refusal = f"probe.monitor_every needs a labelled train and {d.test_split} split in {d.path}; set probe.monitor_every=0"
        try:
            self.train = load_split(d.path, "train", d.image_size)
            self.test = load_split(d.path, d.test_split, d.image_size)
        except DataError as err:
            raise DataError(f"{refusal} ({err})") from err
        if not self.train.labelled or not self.test.labelled:
            raise DataError(refusal)
        self.path = out_dir / "probe_curve.csv"
        self.seconds = 0.0
        # A resumed run appends: every probe follows the epoch-end checkpoint, so no row is ever ahead of last.pt.
        if not (resume and self.path.is_file()):
            self.path.write_text(",".join(FIELDS) + "\n")

    def due(self, epoch: int) -> bool:
        return epoch % self.recipe.probe.monitor_every == 0

    def run(self, encoder: nn.Module, epoch: int, step: int) -> float:
        """Probe `encoder` (left in eval mode: the caller switches training back on); returns top-1 %."""
        t0 = time.perf_counter()
        result, _, _ = probe_with(encoder, self.train, self.test, self.recipe.probe, self.device)
        seconds = time.perf_counter() - t0
        self.seconds += seconds
        with self.path.open("a") as f:
            f.write(f"{epoch},{step},{result.top1:.2f},{seconds:.1f}\n")
        return result.top1
