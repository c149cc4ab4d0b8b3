"""probe_stages.py: every variant probed on a real (untrained) encoder, and the gains said the way they were measured."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from edgessl.models import create_encoder
from edgessl.recipe import load_recipe
from edgessl.train.checkpoint import encoder_payload, save_atomic

REPO = Path(__file__).parents[2]
sys.path.insert(0, str(REPO / "benchmarks"))
import _common  # noqa: E402  (a script folder, not a package)
import probe_stages  # noqa: E402


def test_main_probes_each_variant_and_writes_the_gains(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_common, "RESULTS", tmp_path)
    recipe = load_recipe(REPO / "recipes/smoke.yaml", ["probe.epochs=2"])  # synthetic data: no files needed
    encoder_path = tmp_path / "encoder.pt"
    save_atomic(encoder_payload(create_encoder("tinynext_t", 32), "tinynext_t", 32, recipe.to_dict()), encoder_path)
    argv = ["probe_stages.py", "--encoder", str(encoder_path), "--stages", "stage4", "stage3,stage4", "--augment-copies", "0", "1", "--output", "stages"]
    monkeypatch.setattr(sys, "argv", argv)
    probe_stages.main()
    result = json.loads((tmp_path / "stages.json").read_text())
    top1 = result["rows"][0]["top1"]
    assert list(top1) == ["stage4", "stage3+stage4", "stage4 + 1 aug", "stage3+stage4 + 1 aug"]
    assert all(0 <= v <= 100 for v in top1.values())
    assert result["summary"]["mean_gain_points_stage3_stage4"] == round(top1["stage3+stage4"] - top1["stage4"], 2)
    assert "on 1 encoder" in (tmp_path / "stages.md").read_text()


def test_gains_over_several_encoders_give_the_range_and_mean() -> None:
    rows = [{"top1": {"stage4": 60.0, "stage3+stage4": 61.0}}, {"top1": {"stage4": 50.0, "stage3+stage4": 53.0}}]
    summary, lines = probe_stages.gains_over_baseline(rows, ["stage4", "stage3+stage4"])
    assert summary == {"mean_gain_points_stage3_stage4": 2.0, "min_gain_points_stage3_stage4": 1.0, "encoders": 2}
    assert "+1.00 to +3.00 points over 2 encoders (mean +2.00)" in lines[-1]


def test_no_baseline_no_gains() -> None:
    assert probe_stages.gains_over_baseline([{"top1": {"stage3+stage4": 61.0}}], ["stage3+stage4"]) == ({"encoders": 1}, [])
