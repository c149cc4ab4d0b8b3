"""CMSIS-NN's scratch and persistent buffers per op, and the arena margin the exported header and the budget derive
from them. Expected sizes follow CMSIS-NN's arm_convolve_wrapper_s8_get_buffer_size /
arm_depthwise_conv_wrapper_s8_get_buffer_size / arm_fully_connected_s8_get_buffer_size and TFLM's cmsis_nn kernels."""

import re
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from edgessl.deploy.cmsis_nn import ConvShape, conv_scratch, conv_shape, depthwise_scratch, extra_arena_bytes, largest_scratch, persistent_requests, scratch_requests
from edgessl.deploy.exporters.c_array import ARENA_MARGIN_BYTES, arena_margin_bytes, export_c_array
from edgessl.deploy.exporters.tflite import calibration_inputs, export_tflite_fp32, quantize_tflite_int8
from edgessl.deploy.tflite_graph import TFLiteGraph
from edgessl.targets.budget import budget
from edgessl.targets.catalogue import resolve

# 3x3, stride 1, SAME on 16x16x16
CONV3 = ConvShape(16, 16, 16, 3, 3, 16, 16, 32, 1, 1, 1, 1, 1, 1)


def test_convolution_scratch_by_kernel_path():
    assert conv_scratch(CONV3, "dsp") == 2 * 144 * 2 and conv_scratch(CONV3, "mve") == 4 * 9 * 16  # two int16 im2col columns / four int8 ones
    rgb = replace(CONV3, in_c=3)
    assert conv_scratch(rgb, "dsp") == 2 * 28 * 2 and conv_scratch(rgb, "mve") == 4 * 2 * 16  # 27 columns rounded up to 28 / 32
    pointwise = replace(CONV3, k_h=1, k_w=1, pad_h=0, pad_w=0)
    assert conv_scratch(pointwise, "dsp") == 4 * 16 and conv_scratch(pointwise, "mve") == 0  # 1x1 fast path
    assert conv_scratch(replace(pointwise, stride_h=2, stride_w=2), "dsp") == 0  # 1x1 with stride: no buffer


def test_depthwise_scratch_spares_only_the_3x3_kernel_on_the_dsp_extension():
    dw3 = replace(CONV3, out_c=16)
    assert depthwise_scratch(dw3, "dsp") == 0 and depthwise_scratch(dw3, "mve") == 4 * 124 * 9
    dw7 = replace(dw3, k_h=7, k_w=7, pad_h=3, pad_w=3)
    assert depthwise_scratch(dw7, "dsp") == 16 * 49 * 2 and depthwise_scratch(dw7, "mve") == 4 * 124 * 49
    assert depthwise_scratch(replace(dw3, pad_h=2), "dsp") == 16 * 9 * 2
    assert depthwise_scratch(replace(dw7, dilation_h=2), "dsp") == 0 and depthwise_scratch(replace(dw7, out_c=32), "mve") == 0  # generic kernel


def test_shapes_and_padding_come_from_the_converted_graph(int8_model: Path):
    graph = TFLiteGraph.load(int8_model)
    stem = conv_shape(graph, next(op for op in graph.ops if op.name == "CONV_2D"))
    assert (stem.in_c, stem.k_h, stem.k_w, stem.stride_h, stem.pad_h, stem.pad_w) == (3, 3, 3, 1, 1, 1)  # SAME 3x3 stem
    requests = scratch_requests(graph)
    assert {r.op for r in requests} == {"CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "BATCH_MATMUL"} and all(max(r.bytes.values()) > 0 for r in requests)
    largest = largest_scratch(graph)
    assert largest["mve"].op == "DEPTHWISE_CONV_2D" and largest["mve"].bytes["mve"] == 4 * 124 * 9


def test_fully_connected_buffers_add_up_over_the_graph(int8_model: Path):
    graph = TFLiteGraph.load(int8_model)
    kept = persistent_requests(graph)
    tokens = [r for r in kept if r.detail == "output 1x16x96"]  # attention projections on 16 tokens: the 1x1-convolution path
    assert len(tokens) == 6 and all(r.bytes == {"dsp": 2 * 4 * 96, "mve": 2 * 4 * 96} for r in tokens)
    head = [r for r in kept if r.detail == "output 1x10"]  # the classifier: Helium keeps its kernel sums
    assert len(head) == 1 and head[0].bytes == {"dsp": 0, "mve": 4 * 10}
    extra = extra_arena_bytes(graph)
    assert extra == {"dsp": 6 * 768 + largest_scratch(graph)["dsp"].bytes["dsp"], "mve": 6 * 768 + 40 + 4 * 124 * 9}
    assert extra["mve"] > ARENA_MARGIN_BYTES and arena_margin_bytes(graph) == 9 * 1024  # persistent buffers push Helium past the floor


class WideDepthwise(nn.Module):
    """NHWC pixels -> 1x1 to 256 channels -> 7x7 depthwise -> pooled logits: a model whose scratch exceeds 8 KiB."""

    def __init__(self) -> None:
        super().__init__()
        self.expand = nn.Conv2d(3, 256, 1)
        self.depthwise = nn.Conv2d(256, 256, 7, padding=3, groups=256)
        self.head = nn.Linear(256, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.depthwise(torch.relu(self.expand(x.permute(0, 3, 1, 2) / 255)))
        return self.head(x.mean((2, 3)))


@pytest.fixture(scope="module")
def wide_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(0)
    out = tmp_path_factory.mktemp("wide")
    fp32 = export_tflite_fp32(WideDepthwise().eval(), out / "wide_fp32.tflite", 16)
    images = np.random.default_rng(0).integers(0, 256, (8, 16, 16, 3), dtype=np.uint8)
    return quantize_tflite_int8(fp32, calibration_inputs(images, 8), out / "wide_int8.tflite", ranges="minmax")


def test_a_margin_over_the_floor_reaches_the_header_and_the_budget(wide_model: Path, tmp_path: Path):
    graph = TFLiteGraph.load(wide_model)
    needed = 256 * 49 * 2  # DSP: channels x 7 x 7 int16; Helium asks 4 x 124 x 49 = 24,304 B and keeps 16 B of kernel sums
    assert largest_scratch(graph)["dsp"].bytes["dsp"] == needed and arena_margin_bytes(graph) == 25 * 1024
    _, header = export_c_array(wide_model, tmp_path, list("abcd"), 4096, name="net")
    assert re.search(r"#define NET_ARENA_MARGIN (\d+)", header.read_text()).group(1) == str(25 * 1024)
    assert f"DSP extension (M4/M7/M33) {needed:,} B (largest scratch {needed:,} B at DEPTHWISE_CONV_2D" in header.read_text()
    margin = next(line for line in budget(wide_model, resolve("cortex-m7")).sram_lines if "margin for optimised kernels" in line.item)
    assert margin.bytes == 25 * 1024 and "Helium (M55/M85) 24,320 B (largest scratch 24,304 B" in margin.how
