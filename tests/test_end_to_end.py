"""The whole product path on synthetic data, through the CLI: pretrain -> probe -> fine-tune -> QAT -> export -> budget,
then the exported int8 model on image files (predict)."""

import json
import re
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from typer.testing import CliRunner

from edgessl.cli import app
from tests.deploy_fixtures import GATES_OFF

ROOT = Path(__file__).resolve().parents[1]
runner = CliRunner()
FIDELITY_ON_64 = ["--test-limit", "64"]  # int8 fidelity on 64 test images, not all 256: TFLite Micro takes ~75 ms an image


def _ok(args: list[str]) -> str:
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    return result.output


def test_pretrain_probe_finetune_qat_export_budget(tmp_path):
    run = tmp_path / "run"
    _ok(["pretrain", "--recipe", str(ROOT / "recipes" / "smoke.yaml"), "--out", str(run)])
    assert (run / "encoder.pt").is_file() and (run / "probe.pt").is_file()
    out = _ok(["finetune", "--checkpoint", str(run), "--epochs", "1"])
    assert "BatchNorm folded" in out and (run / "finetuned.pt").is_file()
    out = _ok(["finetune", "--checkpoint", str(run), "--qat", "--epochs", "1"])
    assert "fake-quant (NNCF)" in out and (run / "classifier.pt").is_file()
    assert torch.load(run / "classifier.pt", weights_only=False)["source"] == str(run / "finetuned.pt")  # QAT took the fine-tuned model, not the probe
    out = _ok(["export", "--checkpoint", str(run / "classifier.pt"), "--format", "c", *GATES_OFF, *FIDELITY_ON_64, "--out", str(tmp_path / "fw")])
    assert "tflite-int8-tflm" in out and "arena (measured)" in out
    fw = tmp_path / "fw"
    artefacts = ("model_int8.tflite", "model_int8_micro.tflite", "model_int8_micro.tensor_names.json", "model_int8.onnx", "fidelity.json", "model_int8.tflite.json")
    for name in (*artefacts, "edgessl_model.c", "edgessl_model.h"):
        assert (fw / name).is_file(), name
    assert f"g_edgessl_model_len = {(fw / 'model_int8_micro.tflite').stat().st_size};" in (fw / "edgessl_model.c").read_text()  # the firmware gets the stripped flatbuffer
    assert "tensor names stripped" in json.loads((fw / "model_int8_micro.tflite.json").read_text())["stripped"]
    meta = json.loads((fw / "model_int8.tflite.json").read_text())
    assert meta["stage"] == "qat" and meta["label_fraction"] == 0.2 and "tflite-micro" in meta["tools"]
    calibrated = int(re.search(r"calibrated on (\d+) real training images", meta["int8_ranges"]).group(1))
    assert 0 < calibrated < 256, meta["int8_ranges"]  # the note counts the smoke run's ~100 labelled images, not the 256 asked for
    assert "narrowed to the clipping with the least expected int8 error" in meta["int8_ranges"]  # --ranges mse, the default
    fidelity = json.loads((fw / "fidelity.json").read_text())
    assert set(fidelity["top1"]) == {"pytorch-fp32", "onnx-int8", "tflite-int8-litert", "tflite-int8-tflm"} and fidelity["layers"]
    _ok(["budget", str(fw / "model_int8.tflite"), "--target", "cortex-m7", "--json", str(tmp_path / "budget.json")])
    assert json.loads((tmp_path / "budget.json").read_text())["fits"] is True
    frames = tmp_path / "frames" / meta["classes"][0]  # camera-sized frames in a folder named after a class
    frames.mkdir(parents=True)
    for i in range(3):
        Image.fromarray(np.full((48, 64, 3), 80 * i, np.uint8)).save(frames / f"{i}.png")
    out = _ok(["predict", str(fw / "model_int8.tflite"), str(tmp_path / "frames")])
    assert "3 images, resized to 32x32" in out and "top-1 on the 3 images whose folder names a class" in out


def test_int8_drop_over_the_bound_fails_the_export_with_the_table(tmp_path):
    run = tmp_path / "run"
    _ok(["pretrain", "--recipe", str(ROOT / "recipes" / "smoke.yaml"), "--out", str(run), "optim.epochs=1"])
    result = runner.invoke(app, ["export", "--checkpoint", str(run), "--format", "tflite", "--int8", "--max-drop", "-1", *FIDELITY_ON_64, "--out", str(tmp_path / "x")])
    assert result.exit_code == 2
    assert "dropped more than -1.0 points" in result.output and "| tflite-int8-tflm |" in result.output
