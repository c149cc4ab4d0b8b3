"""Activation ranges for full-int8 TFLite: per-tensor min/max over the calibration images, optionally narrowed
to the clipping that minimises each tensor's expected int8 round-trip error ("mse"). Min/max spends the 256
levels of a tensor with a few large outliers on values that hardly occur, and every common value then lands on
a coarse step."""

from __future__ import annotations

from pathlib import Path

import numpy as np

RANGE_METHODS = ("minmax", "mse")
# mse kept more of fp32 in TFLite Micro on both encoders measured (top-1 +0.12 / +0.08, agreement +0.47 / +0.29
# points; benchmarks/results/deploy_cifar10_vic2_*), for a few seconds more per export
DEFAULT_RANGES = "mse"
BINS = 2048  # histogram resolution: 8 bins to an int8 step at the full min/max range
# clipping candidates, as fractions of the min/max bounds; 1.0 keeps min/max, so "mse" never expects more error
CLIP_GRID = np.linspace(0.1, 1.0, 46)


def check_range_method(ranges: str) -> None:
    if ranges not in RANGE_METHODS:
        raise ValueError(f"unknown activation ranges {ranges!r}; known: {', '.join(RANGE_METHODS)}")


def expected_int8_error(counts: np.ndarray, edges: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Expected squared int8 error of the histogrammed values for every pair (lo[i], hi[j]): values outside the range
    saturate (their distance to the bound, squared), values inside it round (a step squared over 12)."""
    centres = (edges[:-1] + edges[1:]) / 2
    below = np.clip(lo[:, None] - centres, 0, None)
    above = np.clip(centres - hi[:, None], 0, None)
    clip_lo, n_lo = (counts * below**2).sum(1), (counts * (below > 0)).sum(1)
    clip_hi, n_hi = (counts * above**2).sum(1), (counts * (above > 0)).sum(1)
    inside = counts.sum() - n_lo[:, None] - n_hi[None, :]
    step = (hi[None, :] - lo[:, None]) / 255
    return (clip_lo[:, None] + clip_hi[None, :] + inside * step**2 / 12) / counts.sum()


def mse_range(counts: np.ndarray, edges: np.ndarray) -> tuple[float, float]:
    """The (lo, hi), each bound a CLIP_GRID fraction of the histogram's, with the least expected int8 error. The
    range always holds zero, as TFLite's asymmetric int8 needs an exact zero."""
    lo, hi = min(float(edges[0]), 0.0), max(float(edges[-1]), 0.0)
    errors = expected_int8_error(counts, edges, CLIP_GRID * lo, CLIP_GRID * hi)
    i, j = np.unravel_index(int(np.argmin(errors)), errors.shape)
    return float(CLIP_GRID[i] * lo), float(CLIP_GRID[j] * hi)


def activation_histograms(fp32_path: Path, calibration: list[np.ndarray], bounds: dict[str, tuple[float, float]]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per named float tensor, a BINS-bin histogram over its (min, max) bounds, of every value over the images."""
    from edgessl.runtimes.litert import preserving_interpreter

    interp = preserving_interpreter(fp32_path, reference_kernels=False)
    inp = interp.get_input_details()[0]
    details = [d for d in interp.get_tensor_details() if d["name"] in bounds]
    hists = {d["name"]: (np.zeros(BINS), np.linspace(*bounds[d["name"]], BINS + 1)) for d in details}
    for x in calibration:
        interp.set_tensor(inp["index"], x.astype(np.float32))
        interp.invoke()
        for d in details:
            counts, edges = hists[d["name"]]
            counts += np.histogram(interp.get_tensor(d["index"]), edges)[0]
    return hists


def narrow_ranges(qsvs: dict, fp32_path: Path, calibration: list[np.ndarray]) -> None:
    """Narrows, in place, each op output's min/max in `qsvs` (ai-edge-quantizer's per-tensor statistics) to its
    MSE-optimal clipping. The graph's inputs and outputs keep min/max: the input range is pinned to the pixels,
    and clipping the logits could tie the top classes."""
    from edgessl.deploy.tflite_graph import TFLiteGraph

    graph = TFLiteGraph.load(fp32_path)
    io = {graph.tensors[i].name for i in graph.inputs + graph.outputs}
    op_outputs = {graph.tensors[i].name for op in graph.ops for i in op.outputs if graph.tensors[i].dtype == "FLOAT32"}
    bounds = {n: (min(float(np.min(qsvs[n]["min"])), 0.0), max(float(np.max(qsvs[n]["max"])), 0.0)) for n in op_outputs - io if n in qsvs}
    for name, (counts, edges) in activation_histograms(fp32_path, calibration, {n: b for n, b in bounds.items() if b[1] > b[0]}).items():
        old, span = qsvs[name], edges[-1] - edges[0]
        lo, hi = mse_range(counts, edges)
        if hi - lo < span:
            qsvs[name] = {"min": np.full_like(old["min"], lo), "max": np.full_like(old["max"], hi)}
