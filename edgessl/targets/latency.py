"""Analytic latency estimate on a target: per op, MACs / (MACs per cycle of its class) or elements x
cycles per element, plus a fixed dispatch overhead; summed and divided by the board's clock."""

from __future__ import annotations

from dataclasses import dataclass

from edgessl.deploy.tflite_graph import TFLiteGraph
from edgessl.targets.catalogue import Board
from edgessl.targets.graph_stats import op_stats

FREE_OPS = {"RESHAPE", "SQUEEZE"}  # metadata-only in TFLite Micro


@dataclass
class LayerLatency:
    index: int
    op: str
    macs: int
    cycles: float
    ms: float


def estimate_latency(graph: TFLiteGraph, board: Board) -> list[LayerLatency]:
    rows = []
    hz = board.clock_mhz * 1e6
    for s in op_stats(graph):
        if s.op in FREE_OPS:
            cycles = board.op_overhead_cycles * 0.1
        elif s.mac_class is not None:
            cycles = s.macs / board.macs_per_cycle[s.mac_class] + board.op_overhead_cycles
        else:
            cycles = s.elements * board.cycles_per_element + board.op_overhead_cycles
        rows.append(LayerLatency(s.index, s.op, s.macs, cycles, cycles / hz * 1000))
    return rows


def total_ms(rows: list[LayerLatency]) -> float:
    return sum(r.ms for r in rows)
