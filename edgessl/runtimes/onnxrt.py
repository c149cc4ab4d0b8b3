from __future__ import annotations

from pathlib import Path

import numpy as np

from edgessl.runtimes import package_version


class OnnxRuntime:
    def __init__(self, path: Path, name: str = "onnxruntime") -> None:
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = 1
        self.session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        self.input = self.session.get_inputs()[0].name
        self.name = name

    def run(self, images: np.ndarray) -> np.ndarray:
        return np.concatenate([self.session.run(None, {self.input: images[i : i + 1].astype(np.float32)})[0] for i in range(len(images))])

    def version(self) -> str:
        return f"onnxruntime {package_version('onnxruntime')}"
