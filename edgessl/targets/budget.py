"""Will it fit? Flash and SRAM of an int8 .tflite against a board, every figure labelled with how it
was obtained: measured (TFLite Micro's recording allocator), computed (edgessl's graph analysis) or
estimated (interpreter code size, stack)."""

from __future__ import annotations

import tempfile
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from edgessl.deploy.cmsis_nn import cmsis_nn_note
from edgessl.deploy.exporters.c_array import arena_margin_bytes, firmware_arena_bytes
from edgessl.deploy.tflite_graph import TFLiteGraph, write_micro_flatbuffer
from edgessl.runtimes import package_version
from edgessl.runtimes.tflm import measure_arena
from edgessl.targets.catalogue import Board
from edgessl.targets.graph_stats import op_stats, peak_activation_bytes

SCHEMA_VERSION = 1
# TFLite Micro core (interpreter, allocator, flatbuffer reader) and CMSIS-NN kernels, Thumb-2 -Os:
# estimates from TFLM's own size reports (about 30 KB core, 2-6 KB per kernel).
TFLM_CORE_BYTES = 32 * 1024
TFLM_BYTES_PER_KERNEL = 4 * 1024
STACK_MARGIN_BYTES = 8 * 1024


@dataclass
class Line:
    item: str
    bytes: int
    how: str  # measured | computed | estimated


@dataclass
class BudgetReport:
    model: str
    board: str
    family: str
    flash_lines: list[Line]
    sram_lines: list[Line]
    flash_limit: int
    sram_limit: int
    arena: dict[str, int]
    arena_lower_bound: int
    layers: list[dict] = field(default_factory=list)
    tools: dict[str, str] = field(default_factory=dict)

    @property
    def flash_total(self) -> int:
        return sum(line.bytes for line in self.flash_lines)

    @property
    def sram_total(self) -> int:
        return sum(line.bytes for line in self.sram_lines)

    @property
    def fits(self) -> bool:
        return self.flash_total <= self.flash_limit and self.sram_total <= self.sram_limit

    def against(self, board: Board) -> BudgetReport:
        """The same model against another board's limits: nothing measured depends on the board."""
        return replace(self, board=board.name, family=board.family, flash_limit=board.flash, sram_limit=board.sram)

    def arena_explanation(self) -> str:
        head = self.arena.get("head", 0)
        ratio = head / max(self.arena_lower_bound, 1)
        return (
            f"arena = {self.arena['total']:,} B measured = head {head:,} B (activation tensors, planned by TFLM's greedy planner) "
            f"+ tail {self.arena.get('tail', 0):,} B (persistent: per-op quantisation multipliers/shifts, node structs, eval tensors). "
            f"Head / computed peak of live activations ({self.arena_lower_bound:,} B) = {ratio:.2f}. "
            f"The smallest arena_size that still allocates and runs, found by bisection to TFLM's 16-byte alignment: "
            f"{self.arena.get('minimum_arena_size', self.arena['total']):,} B."
        )

    def to_dict(self) -> dict:
        d = asdict(self)
        d.update(schema_version=SCHEMA_VERSION, flash_total=self.flash_total, sram_total=self.sram_total, fits=self.fits,
                 flash_margin=self.flash_limit - self.flash_total, sram_margin=self.sram_limit - self.sram_total,
                 arena_explanation=self.arena_explanation())  # fmt: skip
        return d


def budget(model: Path, board: Board) -> BudgetReport:
    """Flash counts the flatbuffer as the firmware gets it (`write_micro_flatbuffer`, what `edgessl export --format c`
    embeds), the arena is measured on that same flatbuffer."""
    graph = TFLiteGraph.load(model)
    stats = op_stats(graph)
    with tempfile.TemporaryDirectory() as tmp:
        micro, shrink, _ = write_micro_flatbuffer(model, Path(tmp) / "micro.tflite")
        arena = measure_arena(micro)
    kernels = sorted({op.name for op in graph.ops})
    flash_how = f"measured (file size; {shrink.source_bytes:,} B as given, less tensor names and repeated weight zero points)"
    flash = [
        Line("model flatbuffer (weights + graph), as the firmware embeds it", shrink.micro_bytes, flash_how),
        Line(f"TFLite Micro core + {len(kernels)} kernels ({', '.join(kernels)})", TFLM_CORE_BYTES + TFLM_BYTES_PER_KERNEL * len(kernels), "estimated"),
    ]
    inp = graph.tensors[graph.inputs[0]]
    sram = [
        Line("tensor arena (inputs, outputs, activations, persistent data)", arena["minimum_arena_size"], f"measured in TFLite Micro {package_version('tflite-micro')}"),
        Line("arena rounded up to 1 KiB, as the exported header defines it", firmware_arena_bytes(arena["minimum_arena_size"]) - arena["minimum_arena_size"], "computed"),
        Line("arena margin for optimised kernels' buffers, as the header reserves it", arena_margin_bytes(graph), f"computed: at least 8 KiB; {cmsis_nn_note(graph)}"),
        Line("application input frame buffer (one uint8 image)", inp.nbytes, "computed"),
        Line("stack margin", STACK_MARGIN_BYTES, "estimated"),
    ]
    layers = [
        {"index": s.index, "op": s.op, "output_shape": list(s.output_shape), "weight_bytes": s.weight_bytes, "live_activation_bytes": s.live_bytes, "macs": s.macs} for s in stats
    ]
    tools = {"tflite-micro": package_version("tflite-micro"), "edgessl": package_version("edgessl")}
    return BudgetReport(str(model), board.name, board.family, flash, sram, board.flash, board.sram, arena, peak_activation_bytes(stats), layers, tools)
