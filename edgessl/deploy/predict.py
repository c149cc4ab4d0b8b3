"""Classify image files with an exported model or a classifier checkpoint, in the runtime the firmware uses.

The check to make before flashing: do my own camera frames get the classes I expect from the int8 model the
firmware embeds (`model_int8.tflite`; the C array's stripped copy gives bit-identical outputs in TFLite Micro,
checked at export)? Images are resized to the model's input size (bilinear, aspect ratio not kept), as
edgessl's readers resized them for training: the firmware must prepare its frames the same way.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgessl.data.readers import IMAGE_SUFFIXES, DataError, decode_image
from edgessl.deploy.exporters import read_metadata
from edgessl.runtimes import Runtime

RUNTIME_FILES = {"tflite-micro": ".tflite", "litert": ".tflite", "onnxruntime": ".onnx", "pytorch": ".pt"}
DEFAULT_RUNTIME = {".tflite": "tflite-micro", ".onnx": "onnxruntime", ".pt": "pytorch"}
RUN_FOLDER_MODEL = Path("export") / "model_int8.tflite"
CHUNK = 256  # images decoded at a time: a folder of camera frames need not fit in memory


@dataclass
class Predictor:
    model: Path
    runtime: Runtime
    image_size: int
    classes: list[str]  # empty when the model carries no class names: predictions are then class indices


@dataclass
class Prediction:
    image: Path
    label: str | None  # the class sub-folder's name, when it names one of the model's classes
    top: list[tuple[str, float]]  # (class, softmax probability), most probable first


def model_file(model: Path) -> Path:
    """A model file as is; in a run folder the exported int8 TFLite, else classifier.pt, finetuned.pt or probe.pt."""
    from edgessl.deploy.pipeline import resolve_checkpoint

    if model.is_dir():
        return model / RUN_FOLDER_MODEL if (model / RUN_FOLDER_MODEL).is_file() else resolve_checkpoint(model)
    if not model.is_file():
        raise FileNotFoundError(f"{model} not found: pass an exported .tflite / .onnx, a classifier .pt or a run folder")
    return model


def check_runtime(path: Path, runtime: str | None) -> str:
    if path.suffix not in DEFAULT_RUNTIME:
        raise ValueError(f"{path}: expected a .tflite, .onnx or classifier .pt file, or a run folder")
    runtime = runtime or DEFAULT_RUNTIME[path.suffix]
    if runtime not in RUNTIME_FILES:
        raise ValueError(f"unknown runtime {runtime!r}; known: {', '.join(RUNTIME_FILES)}")
    if RUNTIME_FILES[runtime] != path.suffix:
        raise ValueError(f"{runtime} runs {RUNTIME_FILES[runtime]} files, not {path.name}")
    return runtime


def load_predictor(model: Path, runtime: str | None = None) -> Predictor:
    path = model_file(Path(model))
    runtime = check_runtime(path, runtime)
    if runtime == "pytorch":
        from edgessl.deploy.pipeline import load_bundle
        from edgessl.runtimes.torch_rt import TorchRuntime

        bundle = load_bundle(path)
        return Predictor(path, TorchRuntime(bundle.model), bundle.model.image_size, bundle.classes)
    return Predictor(path, _file_runtime(path, runtime), _input_size(path), _metadata_classes(path))


def _file_runtime(path: Path, runtime: str) -> Runtime:
    if runtime == "onnxruntime":
        from edgessl.runtimes.onnxrt import OnnxRuntime

        return OnnxRuntime(path)
    if runtime == "litert":
        from edgessl.runtimes.litert import LiteRTRuntime

        return LiteRTRuntime(path, reference_kernels=False)  # the fast choice: TFLite Micro is the firmware's arithmetic
    from edgessl.runtimes.tflm import TFLMRuntime

    return TFLMRuntime(path)


def _input_size(path: Path) -> int:
    """Height of the model's NHWC input; edgessl's classifiers take square images."""
    if path.suffix == ".onnx":
        import onnx

        dims = onnx.load(str(path), load_external_data=False).graph.input[0].type.tensor_type.shape.dim
        return int(dims[1].dim_value)
    from edgessl.deploy.tflite_graph import TFLiteGraph

    graph = TFLiteGraph.load(path)
    return int(graph.tensors[graph.inputs[0]].shape[1])


def _metadata_classes(path: Path) -> list[str]:
    return list((read_metadata(path) or {}).get("classes", []))


def image_files(root: Path) -> list[Path]:
    """One image, or every image under a folder (recursively, sorted)."""
    if root.is_file():
        return [root]
    if not root.is_dir():
        raise DataError(f"{root} not found: pass an image file or a folder of images")
    files = sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise DataError(f"no images ({', '.join(sorted(IMAGE_SUFFIXES))}) under {root}")
    return files


def predict(predictor: Predictor, files: list[Path], top_k: int = 3) -> Iterator[Prediction]:
    for start in range(0, len(files), CHUNK):
        chunk = files[start : start + CHUNK]
        images = np.stack([_read(f, predictor.image_size) for f in chunk])
        for f, logits in zip(chunk, predictor.runtime.run(images), strict=True):
            yield Prediction(f, _label(f, predictor.classes), _top(logits, predictor.classes, top_k))


def _read(path: Path, size: int) -> np.ndarray:
    try:
        return decode_image(path.read_bytes(), size)
    except OSError as err:  # PIL's UnidentifiedImageError is an OSError
        raise DataError(f"{path} is not a readable image ({err})") from err


def _label(path: Path, classes: list[str]) -> str | None:
    return path.parent.name if path.parent.name in classes else None


def _top(logits: np.ndarray, classes: list[str], k: int) -> list[tuple[str, float]]:
    z = logits.astype(np.float64) - logits.max()
    probs = np.exp(z) / np.exp(z).sum()
    order = np.argsort(-probs, kind="stable")[:k]
    return [(classes[i] if classes else str(i), float(probs[i])) for i in order]


def top1_accuracy(predictions: list[Prediction]) -> tuple[float, int] | None:
    """Top-1 % over the images whose folder names a class, and how many those are; None when none does."""
    labelled = [p for p in predictions if p.label is not None]
    if not labelled:
        return None
    return 100 * sum(p.top[0][0] == p.label for p in labelled) / len(labelled), len(labelled)


def per_class_top1(predictions: list[Prediction]) -> dict[str, tuple[float, int]]:
    """Per labelled class, top-1 % and image count: which classes the model gets wrong on the user's own frames."""
    by_class: dict[str, list[bool]] = {}
    for p in predictions:
        if p.label is not None:
            by_class.setdefault(p.label, []).append(p.top[0][0] == p.label)
    return {name: (100 * sum(hits) / len(hits), len(hits)) for name, hits in sorted(by_class.items())}


def write_csv(predictions: list[Prediction], path: Path) -> None:
    import csv

    k = max(len(p.top) for p in predictions)
    header = ["image", "label"] + [f"{col}{i}" for i in range(1, k + 1) for col in ("class", "prob")]
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        for p in predictions:
            writer.writerow([str(p.image), p.label or ""] + [v for name, prob in p.top for v in (name, f"{prob:.4f}")])
