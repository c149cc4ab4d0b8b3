"""Per-op statistics of a TFLite graph: MACs, weight bytes, and tensor lifetimes (peak live activations)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edgessl.deploy.tflite_graph import TFLiteGraph

MAC_CLASSES = {"CONV_2D": "conv", "DEPTHWISE_CONV_2D": "depthwise", "FULLY_CONNECTED": "fully_connected", "BATCH_MATMUL": "matmul"}


@dataclass
class OpStats:
    index: int
    op: str
    output_shape: tuple[int, ...]
    weight_bytes: int
    live_bytes: int  # activation bytes live while this op runs (inputs, outputs and everything still needed later)
    macs: int
    elements: int

    @property
    def mac_class(self) -> str | None:
        return MAC_CLASSES.get(self.op)


def _numel(shape: tuple[int, ...]) -> int:
    return int(np.prod(shape)) if shape else 1


def op_macs(graph: TFLiteGraph, op_index: int) -> int:
    op = graph.ops[op_index]
    out = graph.tensors[op.outputs[0]]
    if op.name == "CONV_2D":
        _, kh, kw, cin = graph.tensors[op.inputs[1]].shape
        return _numel(out.shape) * kh * kw * cin
    if op.name == "DEPTHWISE_CONV_2D":
        _, kh, kw, _ = graph.tensors[op.inputs[1]].shape
        return _numel(out.shape) * kh * kw
    if op.name == "FULLY_CONNECTED":
        return _numel(out.shape) * graph.tensors[op.inputs[1]].shape[-1]
    if op.name == "BATCH_MATMUL":
        a = graph.tensors[op.inputs[0]].shape
        return _numel(out.shape) * a[-1]
    return 0


def op_stats(graph: TFLiteGraph) -> list[OpStats]:
    """Lifetimes: a non-constant tensor is live from the op that writes it (or the start, for graph
    inputs) to the last op that reads it (or the end, for graph outputs)."""
    n = len(graph.ops)
    first: dict[int, int] = {i: 0 for i in graph.inputs}
    last: dict[int, int] = {o: n - 1 for o in graph.outputs}
    for op in graph.ops:
        for t in op.outputs:
            first.setdefault(t, op.index)
        for t in op.inputs:
            if t >= 0 and not graph.tensors[t].constant:
                last[t] = max(last.get(t, op.index), op.index)
    live_tensors = [t for t in first if not graph.tensors[t].constant]
    stats = []
    for op in graph.ops:
        live = sum(graph.tensors[t].nbytes for t in live_tensors if first[t] <= op.index <= last.get(t, first[t]))
        weights = sum(graph.tensors[t].nbytes for t in op.inputs if t >= 0 and graph.tensors[t].constant)
        out = graph.tensors[op.outputs[0]]
        stats.append(OpStats(op.index, op.name, out.shape, weights, live, op_macs(graph, op.index), _numel(out.shape)))
    return stats


def peak_activation_bytes(stats: list[OpStats]) -> int:
    return max(s.live_bytes for s in stats)
