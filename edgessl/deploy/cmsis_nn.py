"""Arena memory that CMSIS-NN's optimised kernels take beyond TFLite Micro's reference kernels.

edgessl measures the arena with TFLite Micro's reference kernels on the host. Firmware built with CMSIS-NN
(TFLM's `OPTIMIZED_KERNEL_DIR=cmsis_nn`) takes two kinds of extra arena in its kernels' Prepare:
- scratch buffers, planned in the arena's non-persistent head and live during their op only, so the arena grows
  by the largest one: convolutions (`arm_convolve_wrapper_s8_get_buffer_size`,
  `arm_depthwise_conv_wrapper_s8_get_buffer_size`) and, on Helium, BATCH_MATMUL's kernel sums;
- persistent buffers, which add up over the graph: a FULLY_CONNECTED whose output has more than two dimensions
  runs as a 1x1 convolution with per-channel multiplier and shift arrays, and on Helium every other int8
  FULLY_CONNECTED keeps its weights' kernel sums (`arm_fully_connected_s8_get_buffer_size`).
Sizes per ISA: the DSP extension (Cortex-M4, M7, M33) and Helium (MVE: Cortex-M55, M85), as in CMSIS-NN v6/v7
and TFLM's cmsis_nn kernels of 2024. Other int8 kernels edgessl exports take nothing extra on these cores.
"""

from __future__ import annotations

from dataclasses import dataclass

from edgessl.deploy.tflite_graph import Op, TFLiteGraph

ISAS = ("dsp", "mve")
CH_IN_BLOCK_MVE = 124  # channels per block of arm_depthwise_conv_s8_opt on Helium
SAME_PADDING = 0  # tflite::Padding_SAME; VALID is 1


@dataclass(frozen=True)
class ConvShape:
    in_h: int
    in_w: int
    in_c: int
    k_h: int
    k_w: int
    out_h: int
    out_w: int
    out_c: int
    stride_h: int
    stride_w: int
    dilation_h: int
    dilation_w: int
    pad_h: int
    pad_w: int


@dataclass(frozen=True)
class KernelRequest:
    op_index: int
    op: str
    detail: str  # the shape that sets the size, in words
    bytes: dict[str, int]  # per ISA: what the kernel's Prepare requests

    def where(self) -> str:
        return f"{self.op} #{self.op_index}, {self.detail}"


def _padding(size_in: int, kernel: int, stride: int, dilation: int, size_out: int, padding: int) -> int:
    """The leading padding TFLite Micro passes to CMSIS-NN (ComputePaddingHeightWidth)."""
    if padding != SAME_PADDING:
        return 0
    effective = (kernel - 1) * dilation + 1
    return max((size_out - 1) * stride + effective - size_in, 0) // 2


def conv_shape(graph: TFLiteGraph, op: Op) -> ConvShape:
    _, in_h, in_w, in_c = graph.tensors[op.inputs[0]].shape
    _, k_h, k_w, _ = graph.tensors[op.inputs[1]].shape  # OHWI for CONV_2D, 1HWO for DEPTHWISE_CONV_2D
    _, out_h, out_w, out_c = graph.tensors[op.outputs[0]].shape
    o = op.options
    sh, sw, dh, dw = o.get("strideH", 1), o.get("strideW", 1), o.get("dilationHFactor", 1), o.get("dilationWFactor", 1)
    pad = o.get("padding", SAME_PADDING)
    return ConvShape(
        in_h, in_w, in_c, k_h, k_w, out_h, out_w, out_c, sh, sw, dh, dw,
        _padding(in_h, k_h, sh, dh, out_h, pad), _padding(in_w, k_w, sw, dw, out_w, pad),
    )  # fmt: skip


def conv_scratch(s: ConvShape, isa: str) -> int:
    """arm_convolve_wrapper_s8_get_buffer_size. The 1x1 fast path asks 4 * channels only when built with Arm
    Compiler 6 (GCC: 0): counted, as the larger. 1 x N kernels take the general size, an upper bound on Helium."""
    if s.pad_h == s.pad_w == 0 and s.k_h == s.k_w == 1 and s.dilation_h == s.dilation_w == 1:
        fast = s.stride_h == s.stride_w == 1
        return 4 * s.in_c if fast and isa == "dsp" else 0
    columns = s.k_h * s.k_w * s.in_c
    if isa == "mve":
        return 4 * -(-columns // 16) * 16
    return 2 * (-(-columns // 4) * 4) * 2  # two im2col columns of int16, each rounded up to 4 values


def depthwise_scratch(s: ConvShape, isa: str) -> int:
    """arm_depthwise_conv_wrapper_s8_get_buffer_size: only the channel-multiplier-1 path asks, and on the DSP
    extension not for the 3x3 kernel with padding up to 1."""
    if s.in_c != s.out_c or s.dilation_h != 1 or s.dilation_w != 1:
        return 0
    if isa == "mve":
        return 4 * CH_IN_BLOCK_MVE * s.k_h * s.k_w
    if s.k_h == s.k_w == 3 and s.pad_h <= 1 and s.pad_w <= 1:
        return 0
    return s.in_c * s.k_h * s.k_w * 2


def fc_runs_as_1x1_conv(graph: TFLiteGraph, op: Op) -> bool:
    """TFLM's cmsis_nn FULLY_CONNECTED takes arm_convolve_1x1_s8_fast for outputs of rank > 2 and depths of 4k."""
    return len(graph.tensors[op.outputs[0]].shape) > 2 and graph.tensors[op.inputs[1]].shape[-1] % 4 == 0


def fc_scratch(graph: TFLiteGraph, op: Op) -> dict[str, int]:
    """The 1x1 path asks 4 * depth on the DSP extension with Arm Compiler 6 (counted, as the larger); Helium's
    kernel sums are a scratch buffer only for weights that are not constant."""
    weights, depth = graph.tensors[op.inputs[1]], graph.tensors[op.outputs[0]].shape[-1]
    if fc_runs_as_1x1_conv(graph, op):
        return {"dsp": 4 * weights.shape[-1], "mve": 0}
    return {"dsp": 0, "mve": 0 if weights.constant else 4 * depth}


def fc_persistent(graph: TFLiteGraph, op: Op) -> dict[str, int]:
    """The 1x1 path keeps int32 multiplier and shift arrays per output channel; otherwise Helium keeps the constant
    weights' int32 kernel sums per output channel."""
    weights, depth = graph.tensors[op.inputs[1]], graph.tensors[op.outputs[0]].shape[-1]
    if fc_runs_as_1x1_conv(graph, op):
        return {isa: 2 * 4 * depth for isa in ISAS}
    return {"dsp": 0, "mve": 4 * depth if weights.constant else 0}


def batch_matmul_scratch(graph: TFLiteGraph, op: Op) -> dict[str, int]:
    """Helium computes the right-hand side's kernel sums into an int32 scratch buffer per output column."""
    return {"dsp": 0, "mve": 4 * graph.tensors[op.outputs[0]].shape[-1]}


def _conv_scratch(graph: TFLiteGraph, op: Op) -> dict[str, int]:
    shape, size = conv_shape(graph, op), conv_scratch if op.name == "CONV_2D" else depthwise_scratch
    return {isa: size(shape, isa) for isa in ISAS}


def _detail(graph: TFLiteGraph, op: Op) -> str:
    if op.name in ("CONV_2D", "DEPTHWISE_CONV_2D"):
        s = conv_shape(graph, op)
        return f"{s.k_h}x{s.k_w} on {s.in_h}x{s.in_w}x{s.in_c}"
    shape = graph.tensors[op.outputs[0]].shape
    return f"output {'x'.join(map(str, shape))}"


SCRATCH = {"CONV_2D": _conv_scratch, "DEPTHWISE_CONV_2D": _conv_scratch, "FULLY_CONNECTED": fc_scratch, "BATCH_MATMUL": batch_matmul_scratch}
PERSISTENT = {"FULLY_CONNECTED": fc_persistent}


def _requests(graph: TFLiteGraph, sizes: dict) -> list[KernelRequest]:
    requests = []
    for op in graph.ops:
        if op.name in sizes and graph.tensors[op.outputs[0]].dtype == "INT8":
            size = sizes[op.name](graph, op)
            if any(size.values()):
                requests.append(KernelRequest(op.index, op.name, _detail(graph, op), size))
    return requests


def scratch_requests(graph: TFLiteGraph) -> list[KernelRequest]:
    """Every int8 op whose CMSIS-NN kernel asks for a scratch buffer on some ISA, in graph order."""
    return _requests(graph, SCRATCH)


def persistent_requests(graph: TFLiteGraph) -> list[KernelRequest]:
    """Every int8 op whose CMSIS-NN kernel keeps a persistent buffer the reference kernel does not, in graph order."""
    return _requests(graph, PERSISTENT)


def largest_scratch(graph: TFLiteGraph) -> dict[str, KernelRequest | None]:
    """Per ISA, the largest scratch request (None when no op asks)."""
    requests = scratch_requests(graph)
    return {isa: max((r for r in requests if r.bytes[isa]), key=lambda r: r.bytes[isa], default=None) for isa in ISAS}


@dataclass(frozen=True)
class ExtraArena:
    """What CMSIS-NN takes beyond the reference kernels on one ISA: persistent buffers add up, scratch buffers share
    the arena's head, so only the largest counts."""

    persistent: list[KernelRequest]  # the ops that keep a buffer on this ISA
    largest_scratch: KernelRequest | None
    isa: str

    @property
    def persistent_bytes(self) -> int:
        return sum(r.bytes[self.isa] for r in self.persistent)

    @property
    def total(self) -> int:
        return self.persistent_bytes + (self.largest_scratch.bytes[self.isa] if self.largest_scratch else 0)


def extra_arena(graph: TFLiteGraph) -> dict[str, ExtraArena]:
    persistent, largest = persistent_requests(graph), largest_scratch(graph)
    return {isa: ExtraArena([r for r in persistent if r.bytes[isa]], largest[isa], isa) for isa in ISAS}


def extra_arena_bytes(graph: TFLiteGraph) -> dict[str, int]:
    """Per ISA, how much more arena CMSIS-NN needs than the reference kernels: every persistent buffer plus the
    largest scratch buffer."""
    return {isa: extra.total for isa, extra in extra_arena(graph).items()}


def cmsis_nn_note(graph: TFLiteGraph) -> str:
    """The extra arena per ISA in words, for the budget table and the exported header."""
    names = {"dsp": "DSP extension (M4/M7/M33)", "mve": "Helium (M55/M85)"}
    parts = []
    for isa, extra in extra_arena(graph).items():
        largest = extra.largest_scratch
        scratch = f"largest scratch {largest.bytes[isa]:,} B at {largest.where()}" if largest else "no scratch"
        parts.append(f"{names[isa]} {extra.total:,} B ({scratch}; {extra.persistent_bytes:,} B persistent in {len(extra.persistent)} ops)")
    return "CMSIS-NN kernels need more arena than the reference ones: " + "; ".join(parts)
