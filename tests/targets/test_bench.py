import json
import shutil

import pytest
import torch
from typer.testing import CliRunner

from edgessl.cli import app
from edgessl.deploy.classifier import build_classifier
from edgessl.deploy.pipeline import ClassifierBundle, save_bundle
from edgessl.eval.probe import ProbeHead
from edgessl.models import create_encoder
from edgessl.targets.bench import bench_runtimes

runner = CliRunner()


def test_cli_bench_times_both_tflite_runtimes_and_estimates_the_board(int8_model, tmp_path):
    result = runner.invoke(app, ["bench", str(int8_model), "--target", "cortex-m7", "--board", "stm32h743", "--runs", "2", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "bench.json").read_text())
    assert [h["runtime"] for h in report["host"]] == ["litert-int8", "tflite-micro"]  # a bare .tflite: no checkpoint for PyTorch or ONNX
    assert sorted(report["not_timed"]) == ["onnxruntime-fp32", "onnxruntime-int8", "pytorch-fp32"]  # and the report says so
    assert "not timed: pytorch-fp32 (a bare .tflite was given: pass the classifier checkpoint" in " ".join(result.output.split())
    assert all(h["runs"] == 2 and h["median_ms"] > 0 for h in report["host"])
    assert report["board"] == "stm32h743" and report["estimated_latency_ms"] == pytest.approx(sum(layer["estimated_ms"] for layer in report["layers"]))
    assert report["estimate_how"].startswith("estimated:") and "(measured)" in result.output and "stm32h743" in result.output
    assert (tmp_path / "bench.png").is_file()


def test_cli_bench_lists_the_known_targets_for_an_unknown_one(int8_model):
    result = runner.invoke(app, ["bench", str(int8_model), "--target", "cortex-m99"])
    assert result.exit_code == 2 and "cortex-m7" in result.output


def test_a_missing_onnx_file_is_named_with_the_reason_not_left_out_silently(int8_model, tmp_path):
    torch.manual_seed(0)
    model = build_classifier(create_encoder("tinynext_t", 32), ProbeHead(192, 10))
    save_bundle(ClassifierBundle(model, [str(i) for i in range(10)], "data", 0.2, 0, "src", {"encoder": "tinynext_t"}, "qat"), tmp_path / "c.pt")
    tflite = shutil.copy(int8_model, tmp_path / "model_int8.tflite")  # an export folder whose ONNX files were removed
    runtimes, not_timed = bench_runtimes(tflite, tmp_path / "c.pt")
    assert [rt.name for rt in runtimes] == ["pytorch-fp32", "litert-int8", "tflite-micro"]
    assert sorted(not_timed) == ["onnxruntime-fp32", "onnxruntime-int8"]
    assert not_timed["onnxruntime-int8"].startswith("no model_int8.onnx beside model_int8.tflite")
