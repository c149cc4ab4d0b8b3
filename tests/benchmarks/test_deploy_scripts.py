"""benchmarks/deploy.py, then benchmarks/bench_target.py, on a smoke run: the commands that the deployment tables
name still run and write the summary keys the README quotes. Slow (2-3 min), so deselected by default: `pytest -m slow`."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from types import ModuleType

import pytest
from typer.testing import CliRunner

from edgessl.cli import app
from tests.deploy_fixtures import GATES_OFF

REPO = Path(__file__).parents[2]
sys.path.insert(0, str(REPO / "benchmarks"))
import _common  # noqa: E402  (a script folder, not a package)
import bench_target  # noqa: E402
import deploy  # noqa: E402


def run_script(module: ModuleType, monkeypatch: pytest.MonkeyPatch, script: str, *args: str) -> None:
    monkeypatch.setattr(sys, "argv", [f"benchmarks/{script}", *args])
    module.main()


@pytest.mark.slow
def test_deploy_then_bench_target_write_their_tables(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    run, results = tmp_path / "run", tmp_path / "results"
    pretrain = CliRunner().invoke(app, ["pretrain", "--recipe", str(REPO / "recipes" / "smoke.yaml"), "--out", str(run), "optim.epochs=1"])
    assert pretrain.exit_code == 0, pretrain.output
    monkeypatch.setattr(_common, "RESULTS", results)  # never the committed tables
    run_script(deploy, monkeypatch, "deploy.py", "--run", str(run), "--finetune-epochs", "1", "--qat-epochs", "1", "--test-limit", "32", *GATES_OFF, "--name", "deploy_smoke")
    deployed = json.loads((results / "deploy_smoke.json").read_text())["summary"]
    assert deployed["fidelity_gate_passed"] is True and deployed["test_images"] == 32
    assert 0 <= deployed["fp32_finetuned_before_qat_top1"] <= 100 and "fine-tuned end to end for 1 epochs" in (results / "deploy_smoke.md").read_text()
    assert 0 < deployed["firmware_flatbuffer_bytes"] < deployed["tflite_int8_bytes"] and deployed["tflm_arena_bytes"] > 0
    assert (run / "export" / "edgessl_model.c").is_file() and (run / "classifier.pt").is_file()

    run_script(bench_target, monkeypatch, "bench_target.py", "--run", str(run), "--runs", "3")
    bench = json.loads((results / "bench_cortex-m7.json").read_text())
    summary, boards = bench["summary"], bench_target.family_boards("cortex-m7")
    fits = {b: f["flash_total"] <= f["flash_limit"] and f["sram_total"] <= f["sram_limit"] for b, f in bench["fits"].items()}
    assert sorted(fits) == boards and all(summary[f"fits_{b}"] is fits[b] for b in boards)  # every board of the family, each against its own limits
    assert summary["tflm_arena_bytes"] == deployed["tflm_arena_bytes"] and summary["arena_head_over_lower_bound"] >= 1
    assert [h["runtime"] for h in bench["bench"]["host"]] == ["pytorch-fp32", "onnxruntime-fp32", "onnxruntime-int8", "litert-int8", "tflite-micro"]
    assert summary["estimated_latency_ms"] > 0
    md = (results / "bench_cortex-m7.md").read_text()
    assert f"Reproduce: `python benchmarks/bench_target.py --run {run} --runs 3`" in md and f"host {_common.cpu_text()}" in md
    assert f"(after `python benchmarks/deploy.py --run {run} --finetune-epochs 1" in md  # the deploy command that wrote the export
    assert (results / "bench_cortex-m7.png").is_file() and "calibrated on" in bench["int8_ranges"]
