from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np

from edgessl.runtimes import dequantize_output, package_version, quantize_input


def _interpreter(path: Path, reference_kernels: bool, preserve: bool = False):
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    resolver = OpResolverType.BUILTIN_REF if reference_kernels else OpResolverType.AUTO
    return Interpreter(str(path), experimental_op_resolver_type=resolver, experimental_preserve_all_tensors=preserve, num_threads=1)


class LiteRTRuntime:
    """LiteRT (TFLite) interpreter. Reference kernels by default: they match TFLite Micro's arithmetic."""

    def __init__(self, path: Path, reference_kernels: bool = True, name: str = "litert") -> None:
        self.interp = _interpreter(path, reference_kernels)
        self.interp.allocate_tensors()
        self.inp = self.interp.get_input_details()[0]
        self.out = self.interp.get_output_details()[0]
        self.name = name

    def run(self, images: np.ndarray) -> np.ndarray:
        results = []
        for img in images:
            _invoke(self.interp, self.inp, img)
            y = self.interp.get_tensor(self.out["index"])
            results.append(dequantize_output(y, *self.out["quantization"]) if y.dtype != np.float32 else y)
        return np.concatenate(results)

    def version(self) -> str:
        return f"ai-edge-litert {package_version('ai-edge-litert')}"


def _invoke(interp, inp: dict, image: np.ndarray) -> None:
    """One image through the interpreter, quantised first when the model's input is integer."""
    x = image[None].astype(np.float32)
    if inp["dtype"] != np.float32:
        x = quantize_input(x, *inp["quantization"], inp["dtype"])
    interp.set_tensor(inp["index"], x)
    interp.invoke()


def preserving_interpreter(path: Path, reference_kernels: bool = True):
    """An allocated interpreter whose intermediate tensors stay readable after `invoke`."""
    interp = _interpreter(path, reference_kernels, preserve=True)
    interp.allocate_tensors()
    return interp


def all_tensors(path: Path, images: np.ndarray) -> Iterator[dict[str, np.ndarray]]:
    """Per image, every intermediate tensor (dequantised to float) keyed by tensor name; one interpreter for all."""
    interp = preserving_interpreter(path)
    inp = interp.get_input_details()[0]
    details = interp.get_tensor_details()
    for image in images:
        _invoke(interp, inp, image)
        out = {}
        for d in details:
            try:
                v = interp.get_tensor(d["index"]).astype(np.float32)
            except ValueError:
                continue
            scale, zp = d["quantization"]
            out[d["name"]] = (v - zp) * scale if scale else v
        yield out
