"""The real TFLite Micro interpreter (the `tflite-micro` package runs its C++ on the host)."""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from edgessl.runtimes import dequantize_output, package_version, quantize_input

DEFAULT_ARENA = 2 * 1024 * 1024
# TFLite Micro aligns every arena buffer to 16 bytes (kMicroArenaBufferAlignment): a finer search finds nothing.
ARENA_ALIGNMENT = 16


@contextmanager
def captured_stderr() -> Iterator[list[str]]:
    """Collects what C++ writes to file descriptor 2 (Python's sys.stderr is not involved)."""
    out: list[str] = []
    with tempfile.TemporaryFile() as capture:
        saved = os.dup(2)
        os.dup2(capture.fileno(), 2)
        try:
            yield out
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            out.append(capture.read().decode(errors="replace"))


def _quantization(details: dict) -> tuple[float, int] | None:
    """(scale, zero point) of a quantised tensor; None for a float one (an fp32 model runs in TFLite Micro too)."""
    q = details["quantization_parameters"]
    return (float(q["scales"][0]), int(q["zero_points"][0])) if len(q["scales"]) else None


class TFLMRuntime:
    def __init__(self, path: Path, arena_size: int = DEFAULT_ARENA, name: str = "tflite-micro") -> None:
        from tflite_micro.python.tflite_micro import runtime

        self.name = name
        self.interp = runtime.Interpreter.from_file(str(path), arena_size=arena_size)
        self.inp = self.interp.get_input_details(0)
        self.out = self.interp.get_output_details(0)

    def run(self, images: np.ndarray) -> np.ndarray:
        inq, outq = _quantization(self.inp), _quantization(self.out)
        results = []
        for img in images:
            x = img[None].astype(np.float32)
            self.interp.set_input(x if inq is None else quantize_input(x, *inq, self.inp["dtype"]), 0)
            self.interp.invoke()
            y = self.interp.get_output(0)
            results.append(y if outq is None else dequantize_output(y, *outq))
        return np.concatenate(results)

    def version(self) -> str:
        return f"tflite-micro {package_version('tflite-micro')}"

    def arena_report(self) -> dict[str, int]:
        """Arena bytes as TFLite Micro's RecordingMicroAllocator reports them (printed from C++ on fd 2)."""
        with captured_stderr() as captured:
            self.interp.print_allocations()
        text = captured[0]
        found = dict(re.findall(r"Arena allocation (total|head|tail) (\d+) bytes", text))
        if "total" not in found:
            raise RuntimeError(f"could not read the arena size from TFLite Micro's report:\n{text[:500]}")
        return {k: int(v) for k, v in found.items()}


def measure_arena(path: Path) -> dict[str, int]:
    """Recorded arena use, confirmed by bisection: the smallest arena_size that still allocates and runs, to 16 bytes."""
    recorded = TFLMRuntime(path).arena_report()
    lo, hi = 1024, recorded["total"] + 16 * 1024
    while hi - lo > ARENA_ALIGNMENT:
        mid = (lo + hi) // 2
        try:
            with captured_stderr():  # too-small arenas are expected here; keep TFLite Micro's complaints off the terminal
                TFLMRuntime(path, arena_size=mid)
            hi = mid
        except RuntimeError:
            lo = mid
    return {**recorded, "minimum_arena_size": hi}
