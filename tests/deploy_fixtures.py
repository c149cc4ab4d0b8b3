from pathlib import Path

import numpy as np
import pytest
import torch

from edgessl.deploy.classifier import build_classifier
from edgessl.deploy.exporters.tflite import calibration_inputs, export_tflite_fp32, quantize_tflite_int8
from edgessl.eval.probe import ProbeHead
from edgessl.models import create_encoder

# Smoke encoders see a few steps of training: int8 accuracy is not the point of the tests that use them, the path is.
GATES_OFF = ["--max-drop", "100", "--min-agreement", "0", "--max-class-drop", "-1"]


def _int8(out: Path, stages: tuple[str, ...]) -> Path:
    torch.manual_seed(0)
    encoder = create_encoder("tinynext_t", 32).eval()
    model = build_classifier(encoder, ProbeHead(encoder.pooled_dim(stages), 10), stages=stages)
    fp32 = export_tflite_fp32(model, out / "m_fp32.tflite", 32)
    images = np.random.default_rng(0).integers(0, 256, (16, 32, 32, 3), dtype=np.uint8)
    # min/max: tests/deploy/test_ranges.py measures the mse narrowing against these scales
    return quantize_tflite_int8(fp32, calibration_inputs(images, 16), out / "m_int8.tflite", ranges="minmax")


@pytest.fixture(scope="session")
def int8_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A full-int8 TinyNeXt-T classifier (random weights), converted once per test session."""
    return _int8(tmp_path_factory.mktemp("int8"), ("stage4",))


@pytest.fixture(scope="session")
def int8_two_stage_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same with a probe head on pooled stage3 + stage4 features."""
    return _int8(tmp_path_factory.mktemp("int8_two_stage"), ("stage3", "stage4"))
