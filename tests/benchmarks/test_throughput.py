"""throughput.py on synthetic data: the step timings and the epoch's wall / compute split reach the table and summary."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).parents[2]
sys.path.insert(0, str(REPO / "benchmarks"))
import _common  # noqa: E402  (a script folder, not a package)
import throughput  # noqa: E402


def test_the_script_writes_step_costs_and_the_epoch_split(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_common, "RESULTS", tmp_path / "results")  # never the committed tables
    args = ["--data", "synthetic", "--batch", "64", "--repeats", "1", "--runs", str(tmp_path / "runs")]
    monkeypatch.setattr(sys, "argv", ["benchmarks/throughput.py", *args, "--epoch-recipe", str(REPO / "recipes" / "dual_corruption_paper.yaml")])
    throughput.main()
    stored = json.loads((tmp_path / "results" / "throughput.json").read_text())
    summary, steps = stored["summary"], stored["step_ms"]
    assert set(steps) == {"supervised", "ssl_dual_corruption", "ssl_default_two_views"} and all(v > 0 for v in steps.values())
    assert summary["ssl_step_over_supervised_step"] == pytest.approx(steps["ssl_dual_corruption"] / steps["supervised"], rel=0.01)
    assert stored["epoch_steps"] == 512 // 64  # the synthetic train split
    assert summary["epoch_wall_s"] >= summary["epoch_compute_s"] > 0 and summary["epoch_wall_over_compute"] >= 1
    md = (tmp_path / "results" / "throughput.md").read_text()
    assert "Reproduce: `python benchmarks/throughput.py --data synthetic" in md and "| supervised |" in md and "1.00x" in md
