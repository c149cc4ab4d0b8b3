"""label_efficiency.py: --keep-scratch reuses from-scratch rows only under the same protocol; the script writes its
table, plot and summary."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import pytest
import torch

from edgessl.models import create_encoder
from edgessl.train.checkpoint import encoder_payload

REPO = Path(__file__).parents[2]
sys.path.insert(0, str(REPO / "benchmarks"))
import _common  # noqa: E402  (a script folder, not a package)
import label_efficiency  # noqa: E402

PAYLOAD = {"encoder": "tinynext_t", "image_size": 32}


def curve_args(**changes: object) -> argparse.Namespace:
    return argparse.Namespace(**({"data": "d", "epochs": 20, "optimizer": "sgd", "lr": None, "seed": 0} | changes))


def store(protocol: dict) -> None:
    rows = {"supervised from scratch": {"0.2": 71.75}}
    env = {"date": "2026-11-29 06:04 UTC"}
    _common.write_results("label_efficiency", {"rows": rows, "scratch_protocol": protocol, "environment": env, "command": "python x"}, "")


def test_same_protocol_keeps_rows_and_names_their_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_common, "RESULTS", tmp_path)
    store(label_efficiency.scratch_protocol(curve_args(), PAYLOAD))
    rows, source = label_efficiency.kept_scratch(label_efficiency.scratch_protocol(curve_args(lr=0.1), PAYLOAD))  # 0.1: sgd's default
    assert rows == {"0.2": 71.75}
    assert source == {"date": "2026-11-29 06:04 UTC", "command": "python x"}


@pytest.mark.parametrize("changes", [{"epochs": 30}, {"optimizer": "adamw"}, {"seed": 1}, {"data": "other"}])
def test_other_protocol_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, changes: dict) -> None:
    monkeypatch.setattr(_common, "RESULTS", tmp_path)
    store(label_efficiency.scratch_protocol(curve_args(), PAYLOAD))
    with pytest.raises(SystemExit, match="--keep-scratch"):
        label_efficiency.kept_scratch(label_efficiency.scratch_protocol(curve_args(**changes), PAYLOAD))


def test_nothing_stored_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_common, "RESULTS", tmp_path)
    with pytest.raises(SystemExit, match="no from-scratch rows"):
        label_efficiency.kept_scratch(label_efficiency.scratch_protocol(curve_args(), PAYLOAD))


def test_the_script_writes_the_curve_table_plot_and_summary(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    encoder = tmp_path / "encoder.pt"
    torch.save(encoder_payload(create_encoder("tinynext_t", 32), "tinynext_t", 32, {}), encoder)
    monkeypatch.setattr(_common, "RESULTS", tmp_path / "results")  # never the committed tables
    args = ["--encoder", str(encoder), "--data", "synthetic", "--fractions", "0.25", "1", "--probe-epochs", "3", "--epochs", "1"]
    monkeypatch.setattr(sys, "argv", ["benchmarks/label_efficiency.py", *args, "--supervised-fractions", "0.25", "1", "--output", "le_smoke"])
    label_efficiency.main()
    stored = json.loads((tmp_path / "results" / "le_smoke.json").read_text())
    keys = {"probe_top1_0.25", "probe_top1_1", "finetune_top1_0.2", "supervised_scratch_top1_0.25", "supervised_scratch_top1_1"}
    assert set(stored["summary"]) == keys and all(0 <= v <= 100 for v in stored["summary"].values())
    assert stored["scratch_protocol"]["epochs"] == 1 and stored["scratch_protocol"]["lr"] == 0.1
    md = (tmp_path / "results" / "le_smoke.md").read_text()
    assert "Reproduce: `python benchmarks/label_efficiency.py --encoder" in md
    assert "| | 20% | 25% | 100% |" in md  # every measured fraction gets a column, in order
    finetuned = next(line for line in md.splitlines() if line.startswith("| fine-tuned SSL encoder |"))
    assert finetuned.endswith(" | - | - |")  # measured at 20 % only
    assert (tmp_path / "results" / "le_smoke.png").is_file()
