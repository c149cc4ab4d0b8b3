import numpy as np

from edgessl.deploy.tflite_graph import TFLiteGraph, misaligned_buffers, write_micro_flatbuffer
from edgessl.runtimes.litert import LiteRTRuntime
from edgessl.runtimes.tflm import ARENA_ALIGNMENT, TFLMRuntime, measure_arena


def test_int8_model_has_int8_nhwc_io_and_inline_weights(int8_model):
    graph = TFLiteGraph.load(int8_model)
    inp, out = graph.tensors[graph.inputs[0]], graph.tensors[graph.outputs[0]]
    assert inp.dtype == "INT8" and inp.shape == (1, 32, 32, 3) and out.dtype == "INT8"
    assert abs(inp.scale - 1.0) < 0.01 and inp.zero_point == -128  # firmware feeds pixel - 128
    assert {op.name for op in graph.ops} >= {"CONV_2D", "DEPTHWISE_CONV_2D", "BATCH_MATMUL", "SOFTMAX", "FULLY_CONNECTED"}


def test_litert_and_tflite_micro_run_it_and_agree(int8_model):
    images = np.random.default_rng(1).integers(0, 256, (6, 32, 32, 3), dtype=np.uint8)
    a = LiteRTRuntime(int8_model).run(images)
    b = TFLMRuntime(int8_model).run(images)
    assert a.shape == b.shape == (6, 10)
    assert (a.argmax(1) == b.argmax(1)).mean() >= 0.8
    assert np.abs(a - b).max() <= 0.1 * np.abs(a).max() + 1e-6


def test_arena_is_measured_and_confirmed_by_bisection(int8_model):
    arena = measure_arena(int8_model)
    assert 50_000 < arena["total"] < 600_000  # weights are in flash, not in the arena
    # the recorder's count is what the model needs: an arena 16 bytes (one alignment step) smaller does not allocate
    assert arena["total"] <= arena["minimum_arena_size"] <= arena["total"] + ARENA_ALIGNMENT


def test_a_two_stage_probe_head_converts_and_runs_in_tflite_micro(int8_two_stage_model):
    graph = TFLiteGraph.load(int8_two_stage_model)
    assert sum(op.name == "MEAN" for op in graph.ops) >= 2  # one global pooling per stage read
    images = np.random.default_rng(2).integers(0, 256, (6, 32, 32, 3), dtype=np.uint8)
    a = LiteRTRuntime(int8_two_stage_model).run(images)
    b = TFLMRuntime(int8_two_stage_model).run(images)
    assert a.shape == b.shape == (6, 10)
    assert (a.argmax(1) == b.argmax(1)).mean() >= 0.8


def test_the_firmware_flatbuffer_is_smaller_aligned_and_the_same_model_in_tflite_micro(int8_model, tmp_path):
    micro, shrink, names = write_micro_flatbuffer(int8_model, tmp_path / "micro.tflite")
    assert shrink.micro_bytes == micro.stat().st_size < shrink.source_bytes == int8_model.stat().st_size
    assert shrink.source_bytes - shrink.micro_bytes >= 0.9 * (shrink.tensor_names + shrink.zero_points) > 100_000
    assert misaligned_buffers(int8_model, 16) > 0 and misaligned_buffers(micro, 16) == 0
    graph, source = TFLiteGraph.load(micro), TFLiteGraph.load(int8_model)
    assert len(names) == len(source.tensors) and names[5] == source.tensors[5].name and graph.tensors[5].name == ""
    assert graph.tensors[graph.inputs[0]].name == source.tensors[source.inputs[0]].name  # the application may look it up
    images = np.random.default_rng(3).integers(0, 256, (4, 32, 32, 3), dtype=np.uint8)
    assert np.array_equal(TFLMRuntime(micro).run(images), TFLMRuntime(int8_model).run(images))
    assert measure_arena(micro)["minimum_arena_size"] == measure_arena(int8_model)["minimum_arena_size"]
