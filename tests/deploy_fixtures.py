from pathlib import Path

import numpy as np
import pytest
import torch

from edgessl.deploy.classifier import build_classifier
from edgessl.deploy.exporters.tflite import calibration_inputs, export_tflite_fp32, quantize_tflite_int8
from edgessl.eval.probe import ProbeHead
from edgessl.models import create_encoder


@pytest.fixture(scope="session")
def int8_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A full-int8 TinyNeXt-T classifier (random weights), converted once per test session."""
    torch.manual_seed(0)
    out = tmp_path_factory.mktemp("int8")
    model = build_classifier(create_encoder("tinynext_t", 32).eval(), ProbeHead(192, 10))
    fp32 = export_tflite_fp32(model, out / "m_fp32.tflite", 32)
    images = np.random.default_rng(0).integers(0, 256, (16, 32, 32, 3), dtype=np.uint8)
    return quantize_tflite_int8(fp32, calibration_inputs(images, 16), out / "m_int8.tflite")
