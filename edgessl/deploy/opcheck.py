"""Reject models TFLite Micro cannot run, at export time, naming the op and the layer."""

from __future__ import annotations

from pathlib import Path

from torch import nn

from edgessl.deploy.tflite_graph import TFLiteGraph


class UnsupportedOpError(ValueError):
    pass


# Builtins with int8 kernels in TFLite Micro's op resolver (tensorflow/lite/micro/kernels).
TFLM_INT8_OPS = {
    "ADD", "AVERAGE_POOL_2D", "BATCH_MATMUL", "CONCATENATION", "CONV_2D", "DEPTHWISE_CONV_2D", "DEQUANTIZE",
    "FULLY_CONNECTED", "HARD_SWISH", "LOGISTIC", "MAX_POOL_2D", "MEAN", "MUL", "PAD", "PADV2", "QUANTIZE",
    "RELU", "RELU6", "RESHAPE", "SOFTMAX", "SQUEEZE", "STRIDED_SLICE", "SUB", "SUM", "TANH", "TRANSPOSE",
    "MAXIMUM", "MINIMUM", "LEAKY_RELU", "PACK", "UNPACK", "SPLIT", "SPLIT_V", "SLICE", "EXP", "RSQRT", "SQUARED_DIFFERENCE",
}  # fmt: skip

# PyTorch modules whose export has no TFLite Micro kernel, with what to use instead.
TORCH_DENYLIST = {
    nn.GELU: "GELU exports as Erf (or the GELU builtin with approximate='tanh'); TFLite Micro has neither. Use x * sigmoid(1.702 x)",
    nn.Mish: "Mish needs SOFTPLUS, which TFLite Micro lacks. Use x * sigmoid(1.702 x)",
    nn.ELU: "ELU has no int8 TFLite Micro kernel",
    nn.LayerNorm: "LayerNorm lowers to float ops that break full-int8; use BatchNorm",
}


def check_torch_model(model: nn.Module) -> None:
    problems = [f"layer '{name}' ({type(m).__name__}): {TORCH_DENYLIST[type(m)]}" for name, m in model.named_modules() if type(m) in TORCH_DENYLIST]
    if problems:
        raise UnsupportedOpError("model has ops TFLite Micro cannot run:\n  " + "\n  ".join(problems))


def check_tflite_model(path: Path) -> None:
    graph = TFLiteGraph.load(path)
    problems = [f"op {op.name} producing '{op.output_name}'" for op in graph.ops if op.name not in TFLM_INT8_OPS]
    if problems:
        raise UnsupportedOpError(f"{path} has ops TFLite Micro cannot run:\n  " + "\n  ".join(problems[:20]))
