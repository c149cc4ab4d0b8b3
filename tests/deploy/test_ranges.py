import numpy as np
import onnx
import onnx.numpy_helper
import pytest
import torch

from edgessl.deploy.exporters.onnx import export_onnx_fp32, quantize_onnx_int8
from edgessl.deploy.exporters.tflite import calibration_inputs, quantize_tflite_int8
from edgessl.deploy.ranges import BINS, RANGE_METHODS, expected_int8_error, mse_range
from edgessl.deploy.tflite_graph import TFLiteGraph
from edgessl.runtimes.litert import LiteRTRuntime
from edgessl.runtimes.tflm import TFLMRuntime


def _histogram(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    counts, edges = np.histogram(values, BINS, (min(values.min(), 0), max(values.max(), 0)))
    return counts.astype(float), edges


def test_the_expected_error_is_rounding_inside_the_range_and_saturation_outside():
    counts, edges = _histogram(np.random.default_rng(0).uniform(0, 2.55, 100_000))
    full = expected_int8_error(counts, edges, np.array([0.0]), np.array([2.55]))[0, 0]
    assert full == pytest.approx((2.55 / 255) ** 2 / 12, rel=0.01)
    half = expected_int8_error(counts, edges, np.array([0.0]), np.array([1.275]))[0, 0]
    assert half == pytest.approx(0.5 * 1.275**2 / 3, rel=0.02)  # half the values saturate, E[d^2] = h^2 / 3


def test_mse_range_clips_a_rare_outlier_and_keeps_a_uniform_tensor():
    rng = np.random.default_rng(0)
    counts, edges = _histogram(np.append(rng.normal(0, 1, 1_000_000), 60.0))
    counts = counts * 100 - np.eye(BINS)[-1] * 99  # 1e8 values, one of them 60 sigma out
    lo, hi = mse_range(counts, edges)
    assert 3 < hi < 0.2 * edges[-1] and lo < 0.5 * edges[0]  # the outlier goes, the tail below stays
    narrowed, minmax = expected_int8_error(counts, edges, np.array([lo, edges[0]]), np.array([hi, edges[-1]])).diagonal()
    assert narrowed < 0.2 * minmax
    lo, hi = mse_range(*_histogram(rng.uniform(-1, 3, 100_000)))
    assert hi - lo > 0.9 * 4


def _activation_scales(path):
    graph = TFLiteGraph.load(path)
    return {t.name: t.scale for t in graph.tensors if not t.constant and t.scale and t.dtype == "INT8"}


def test_mse_ranges_narrow_activations_but_not_the_io_and_run_in_tflite_micro(int8_model, tmp_path):
    fp32 = int8_model.with_name("m_fp32.tflite")  # the fixture's fp32 source
    images = np.random.default_rng(0).integers(0, 256, (16, 32, 32, 3), dtype=np.uint8)
    mse = quantize_tflite_int8(fp32, calibration_inputs(images, 16), tmp_path / "m_mse.tflite", ranges="mse")
    minmax, narrowed = _activation_scales(int8_model), _activation_scales(mse)
    shared = minmax.keys() & narrowed.keys()
    assert len(shared) > 50 and all(narrowed[n] <= minmax[n] * 1.0001 for n in shared)
    assert sum(narrowed[n] < 0.95 * minmax[n] for n in shared) >= 5
    graph = TFLiteGraph.load(mse)
    for i in graph.inputs + graph.outputs:  # pixels pinned to [0, 255]; the logits keep their full range
        t = graph.tensors[i]
        assert t.scale == pytest.approx(minmax[t.name])
    a, b = LiteRTRuntime(mse).run(images[:4]), TFLMRuntime(mse).run(images[:4])
    assert a.shape == b.shape == (4, 10) and np.abs(a - b).max() <= 0.1 * np.abs(a).max() + 1e-6


def test_an_unknown_range_method_lists_the_known_ones(int8_model, tmp_path):
    images = np.zeros((2, 32, 32, 3), dtype=np.uint8)
    with pytest.raises(ValueError, match="minmax, mse"):
        quantize_tflite_int8(int8_model.with_name("m_fp32.tflite"), calibration_inputs(images, 2), tmp_path / "x.tflite", ranges="entropy")


class _TinyNet(torch.nn.Module):
    """NHWC pixels in, as the deployable classifier takes them; small enough to export to ONNX in seconds."""

    def __init__(self) -> None:
        super().__init__()
        self.body = torch.nn.Sequential(
            torch.nn.Conv2d(3, 8, 3), torch.nn.ReLU(), torch.nn.Conv2d(8, 8, 3), torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(8, 4)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x.permute(0, 3, 1, 2) / 255)


def _onnx_activation_scales(path) -> dict[str, float]:
    """The scale of every activation QuantizeLinear in a QDQ model (weights are stored int8, so they have none)."""
    model = onnx.load(str(path))
    values = {t.name: float(onnx.numpy_helper.to_array(t)) for t in model.graph.initializer if t.dims == []}
    return {n.input[0]: values[n.input[1]] for n in model.graph.node if n.op_type == "QuantizeLinear" and n.input[1] in values}


def test_onnx_int8_ranges_for_mse_are_clipped_inside_the_min_max_ones(tmp_path):
    torch.manual_seed(0)
    fp32 = export_onnx_fp32(_TinyNet().eval(), tmp_path / "tiny.onnx", 32)
    images = np.random.default_rng(0).integers(0, 256, (32, 32, 32, 3), dtype=np.uint8)  # enough values for a 99.999 % percentile to clip
    scales = {r: _onnx_activation_scales(quantize_onnx_int8(fp32, calibration_inputs(images, 32), tmp_path / f"{r}.onnx", r)) for r in RANGE_METHODS}
    shared = scales["minmax"].keys() & scales["mse"].keys()
    assert len(shared) >= 3 and all(scales["mse"][n] <= scales["minmax"][n] * 1.0001 for n in shared)
    assert any(scales["mse"][n] < 0.98 * scales["minmax"][n] for n in shared)
