"""`edgessl bench`: host latencies measured in every runtime we have, and the target latency estimated
from the analytic model; a table, a JSON report and a PNG of per-layer latency and memory."""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edgessl.deploy.tflite_graph import TFLiteGraph
from edgessl.runtimes import Runtime
from edgessl.targets.catalogue import Board
from edgessl.targets.graph_stats import op_stats
from edgessl.targets.latency import estimate_latency, total_ms

ONNX_PRECISIONS = ("fp32", "int8")


@dataclass
class HostTiming:
    runtime: str
    version: str
    median_ms: float
    p90_ms: float
    runs: int
    how: str = "measured on this host, batch 1, after warm-up"


@dataclass
class BenchReport:
    model: str
    board: Board
    host: list[HostTiming]
    estimated_ms: float
    layers: list[dict] = field(default_factory=list)
    not_timed: dict[str, str] = field(default_factory=dict)  # runtime -> why it has no row

    def to_dict(self) -> dict:
        return {"model": self.model, "board": self.board.name, "family": self.board.family, "clock_mhz": self.board.clock_mhz,
                "estimated_latency_ms": self.estimated_ms, "estimate_how": "estimated: per-layer MACs / MACs-per-cycle of the op class "
                f"+ elements x cycles/element + per-op overhead, at {self.board.clock_mhz:g} MHz ({self.board.family_source.strip()})",
                "host": [t.__dict__ for t in self.host], "not_timed": self.not_timed, "layers": self.layers}  # fmt: skip


def time_runtime(rt: Runtime, image: np.ndarray, warmup: int = 5, runs: int = 50) -> HostTiming:
    for _ in range(warmup):
        rt.run(image)
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        rt.run(image)
        times.append((time.perf_counter() - t0) * 1000)
    times.sort()
    return HostTiming(rt.name, rt.version(), statistics.median(times), times[int(0.9 * (len(times) - 1))], runs)


def bench_runtimes(tflite_int8: Path, checkpoint: Path | None = None) -> tuple[list[Runtime], dict[str, str]]:
    """Every runtime the classifier can be timed in, and why each other one cannot (`BenchReport.not_timed`). Given
    its checkpoint: PyTorch fp32, and onnxruntime on each ONNX file the export wrote beside the .tflite; always
    LiteRT's optimised kernels and TFLite Micro on the int8 file."""
    from edgessl.runtimes.litert import LiteRTRuntime
    from edgessl.runtimes.tflm import TFLMRuntime

    on_int8: list[Runtime] = [LiteRTRuntime(tflite_int8, reference_kernels=False, name="litert-int8"), TFLMRuntime(tflite_int8)]
    onnx_names = {precision: f"onnxruntime-{precision}" for precision in ONNX_PRECISIONS}
    if checkpoint is None:
        return on_int8, dict.fromkeys(["pytorch-fp32", *onnx_names.values()], "a bare .tflite was given: pass the classifier checkpoint to time it")
    from edgessl.deploy.pipeline import load_bundle
    from edgessl.runtimes.onnxrt import OnnxRuntime
    from edgessl.runtimes.torch_rt import TorchRuntime

    runtimes: list[Runtime] = [TorchRuntime(load_bundle(checkpoint).model)]
    not_timed = {}
    for precision, name in onnx_names.items():
        onnx = tflite_int8.parent / f"model_{precision}.onnx"
        if onnx.is_file():
            runtimes.append(OnnxRuntime(onnx, name))
        else:
            not_timed[name] = f"no {onnx.name} beside {tflite_int8.name} (every int8 export writes both: `edgessl export --format tflite --int8`)"
    return [*runtimes, *on_int8], not_timed


def bench(tflite_int8: Path, board: Board, runtimes: list[Runtime], runs: int = 50, not_timed: dict[str, str] | None = None) -> BenchReport:
    graph = TFLiteGraph.load(tflite_int8)
    h, w, c = graph.tensors[graph.inputs[0]].shape[1:]
    image = np.random.default_rng(0).integers(0, 256, (1, h, w, c), dtype=np.uint8)
    host = [time_runtime(rt, image, runs=runs) for rt in runtimes]
    est = estimate_latency(graph, board)
    stats = {s.index: s for s in op_stats(graph)}
    layers = [{"index": r.index, "op": r.op, "macs": r.macs, "estimated_ms": r.ms, "live_activation_bytes": stats[r.index].live_bytes,
               "weight_bytes": stats[r.index].weight_bytes} for r in est]  # fmt: skip
    return BenchReport(str(tflite_int8), board, host, total_ms(est), layers, dict(not_timed or {}))


def plot_layers(report: BenchReport, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    idx = [r["index"] for r in report.layers]
    fig, (a, b) = plt.subplots(2, 1, figsize=(12, 6), sharex=True)
    a.bar(idx, [r["estimated_ms"] for r in report.layers], color="tab:blue")
    a.set_ylabel("estimated ms")
    a.set_title(f"{Path(report.model).name} on {report.board.name} @ {report.board.clock_mhz:g} MHz: {report.estimated_ms:.1f} ms (estimated)")
    b.plot(idx, [r["live_activation_bytes"] / 1024 for r in report.layers], color="tab:orange", label="live activations (KiB)")
    b.bar(idx, [r["weight_bytes"] / 1024 for r in report.layers], color="tab:green", alpha=0.6, label="weights (KiB)")
    b.set_xlabel("op index")
    b.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
