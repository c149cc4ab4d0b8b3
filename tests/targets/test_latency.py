"""MLPerf Tiny calibration: ResNet-8 built and exported by edgessl, latency estimated by the model,
against ST's published results. A miss beyond +-30 % means the target model needs recalibrating."""

import numpy as np
import pytest
import torch

from edgessl.deploy.classifier import fold_batchnorm
from edgessl.deploy.exporters.tflite import calibration_inputs, export_tflite_fp32, quantize_tflite_int8
from edgessl.deploy.tflite_graph import TFLiteGraph
from edgessl.targets.catalogue import resolve
from edgessl.targets.graph_stats import op_stats
from edgessl.targets.latency import estimate_latency, total_ms
from edgessl.targets.resnet8 import PUBLISHED_MS, ResNet8


@pytest.fixture(scope="module")
def resnet8_int8(tmp_path_factory):
    torch.manual_seed(0)
    out = tmp_path_factory.mktemp("resnet8")
    fp32 = export_tflite_fp32(fold_batchnorm(ResNet8().eval()), out / "resnet8_fp32.tflite", 32)
    images = np.random.default_rng(0).integers(0, 256, (8, 32, 32, 3), dtype=np.uint8)
    return quantize_tflite_int8(fp32, calibration_inputs(images, 8), out / "resnet8_int8.tflite")


def test_resnet8_has_the_reference_mac_count(resnet8_int8):
    macs = sum(s.macs for s in op_stats(TFLiteGraph.load(resnet8_int8)))
    assert 12.0e6 < macs < 13.0e6


@pytest.mark.parametrize("board", sorted(PUBLISHED_MS))
def test_resnet8_estimate_within_30_percent_of_published(resnet8_int8, board):
    low, high = PUBLISHED_MS[board]
    est = total_ms(estimate_latency(TFLiteGraph.load(resnet8_int8), resolve(board)))
    assert 0.7 * low <= est <= 1.3 * high, f"{board}: estimated {est:.1f} ms, published {low}-{high} ms"
