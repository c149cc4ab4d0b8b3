"""Scratch buffers that CMSIS-NN's optimised kernels request beyond TFLite Micro's reference kernels.

edgessl measures the arena with TFLite Micro's reference kernels on the host. Firmware built with CMSIS-NN
(TFLM's `OPTIMIZED_KERNEL_DIR=cmsis_nn`) asks in each convolution's Prepare for a scratch buffer the reference
kernel does not need. TFLM plans it in the arena's non-persistent head, live during its op only, so the arena
grows by at most the largest request. The formulas are CMSIS-NN's `arm_convolve_wrapper_s8_get_buffer_size`
and `arm_depthwise_conv_wrapper_s8_get_buffer_size` (v6/v7), for the DSP extension (Cortex-M4, M7, M33) and
for Helium (MVE: Cortex-M55, M85). No other int8 kernel edgessl exports asks for a buffer on these cores.
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
class ScratchRequest:
    op_index: int
    op: str
    shape: ConvShape
    bytes: dict[str, int]  # per ISA: what the kernel's Prepare requests

    def where(self) -> str:
        s = self.shape
        return f"{self.op} #{self.op_index}, {s.k_h}x{s.k_w} on {s.in_h}x{s.in_w}x{s.in_c}"


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


SCRATCH = {"CONV_2D": conv_scratch, "DEPTHWISE_CONV_2D": depthwise_scratch}


def scratch_requests(graph: TFLiteGraph) -> list[ScratchRequest]:
    """Every op whose CMSIS-NN kernel asks for a scratch buffer on some ISA, in graph order."""
    requests = []
    for op in graph.ops:
        if op.name in SCRATCH:
            shape = conv_shape(graph, op)
            sizes = {isa: SCRATCH[op.name](shape, isa) for isa in ISAS}
            if any(sizes.values()):
                requests.append(ScratchRequest(op.index, op.name, shape, sizes))
    return requests


def largest_scratch(graph: TFLiteGraph) -> dict[str, ScratchRequest | None]:
    """Per ISA, the largest request (None when no op asks)."""
    requests = scratch_requests(graph)
    return {isa: max((r for r in requests if r.bytes[isa]), key=lambda r: r.bytes[isa], default=None) for isa in ISAS}


def scratch_note(graph: TFLiteGraph) -> str:
    """The largest request per ISA in words, for the budget table and the exported header."""
    names = {"dsp": "DSP extension (M4/M7/M33)", "mve": "Helium (M55/M85)"}
    parts = [f"{names[isa]} {r.bytes[isa]:,} B at {r.where()}" if r else f"{names[isa]} none" for isa, r in largest_scratch(graph).items()]
    return "largest CMSIS-NN scratch request: " + "; ".join(parts)
