"""label_efficiency.py --keep-scratch reuses from-scratch rows only under the same protocol."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pytest

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
