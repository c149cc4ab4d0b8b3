"""`edgessl export`: build the requested artefact, verify it against PyTorch on real images, and for
int8 write the fidelity report (fp32 PyTorch, ONNX int8, TFLite int8 in LiteRT and in TFLite Micro),
failing when int8 breaks the `FidelityGate`: too many top-1 points lost overall or on one class, or too few answers
kept."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edgessl.deploy.exporters import write_metadata
from edgessl.deploy.exporters.c_array import export_c_array, firmware_arena_bytes
from edgessl.deploy.exporters.onnx import export_onnx_fp32, quantize_onnx_int8
from edgessl.deploy.exporters.tflite import CALIBRATION_IMAGES, calibration_count, calibration_inputs, export_tflite_fp32, quantize_tflite_int8
from edgessl.deploy.fidelity import FidelityGate, FidelityReport, check_fidelity, evaluate_runtimes, layer_errors
from edgessl.deploy.pipeline import ClassifierBundle, artefact_meta, labelled_subset, test_split, write_json
from edgessl.deploy.ranges import DEFAULT_RANGES, check_range_method
from edgessl.deploy.tflite_graph import MicroShrink, write_micro_flatbuffer
from edgessl.runtimes import package_version
from edgessl.runtimes.litert import LiteRTRuntime
from edgessl.runtimes.onnxrt import OnnxRuntime
from edgessl.runtimes.tflm import TFLMRuntime, measure_arena
from edgessl.runtimes.torch_rt import TorchRuntime

REFERENCE = "pytorch-fp32"
RANGE_NOTES = {
    "minmax": "per-tensor min/max (TFLite: not ai-edge-quantizer's default moving average; ONNX: onnxruntime's MinMax)",
    "mse": "TFLite: per-tensor min/max narrowed to the clipping with the least expected int8 error (edgessl.deploy.ranges); ONNX: onnxruntime's Percentile calibration (99.999 %)",
}


def ranges_note(ranges: str, stage: str, images: int = CALIBRATION_IMAGES) -> str:
    """`images`: how many calibrated the ranges (fewer than CALIBRATION_IMAGES when the labelled subset is smaller)."""
    qat = "; the QAT-trained weights are used, NNCF's learned ranges are not carried into TFLite or ONNX" if stage == "qat" else ""
    return f"int8 activation ranges: calibrated on {images} real training images, {RANGE_NOTES[ranges]}{qat}."


@dataclass
class ExportResult:
    artefacts: dict[str, Path] = field(default_factory=dict)
    report: FidelityReport | None = None
    arena: dict[str, int] | None = None


def _verify_fp32(bundle: ClassifierBundle, runtime: object, images: np.ndarray, what: str, tol: float = 1e-3) -> float:
    reference = TorchRuntime(bundle.model).run(images)
    diff = float(np.abs(reference - runtime.run(images)).max())
    scale = float(np.abs(reference).max()) + 1e-6
    if diff / scale > tol:
        raise RuntimeError(f"{what} disagrees with PyTorch: max |diff| {diff:.3g} (relative {diff / scale:.3g} > {tol})")
    return diff


def export_fp32(bundle: ClassifierBundle, fmt: str, out: Path, probe_images: np.ndarray) -> Path:
    """fp32 ONNX or TFLite, checked against PyTorch on real images."""
    size = bundle.model.image_size
    if fmt == "onnx":
        path = export_onnx_fp32(bundle.model, out / "model_fp32.onnx", size)
        _verify_fp32(bundle, OnnxRuntime(path), probe_images, "ONNX fp32")
    else:
        path = export_tflite_fp32(bundle.model, out / "model_fp32.tflite", size)
        _verify_fp32(bundle, LiteRTRuntime(path, reference_kernels=False), probe_images, "TFLite fp32")
    return path


def build_int8(bundle: ClassifierBundle, out: Path, train_images: np.ndarray, ranges: str = DEFAULT_RANGES) -> dict[str, Path]:
    """fp32 and int8 of both ONNX and TFLite, each fp32 file checked against PyTorch; `train_images`: the bundle's
    labelled images (`labelled_subset`), which calibrate the int8 ranges (`ranges`: how they are chosen)."""
    calib = calibration_inputs(train_images)
    paths = {"onnx_fp32": export_fp32(bundle, "onnx", out, train_images[:16])}
    paths["onnx_int8"] = quantize_onnx_int8(paths["onnx_fp32"], calib, out / "model_int8.onnx", ranges)
    paths["tflite_fp32"] = export_fp32(bundle, "tflite", out, train_images[:16])
    paths["tflite_int8"] = quantize_tflite_int8(paths["tflite_fp32"], calib, out / "model_int8.tflite", ranges)
    return paths


def build_micro(int8_path: Path, path: Path, images: np.ndarray) -> tuple[Path, MicroShrink]:
    """The flatbuffer that goes to flash (`write_micro_flatbuffer`), with its source's tensor names beside it;
    refused unless TFLite Micro gives bit-identical outputs for both on `images`."""
    path, shrink, names = write_micro_flatbuffer(int8_path, path)
    if not np.array_equal(TFLMRuntime(int8_path).run(images), TFLMRuntime(path).run(images)):
        raise RuntimeError(f"{path.name}: TFLite Micro outputs differ from {int8_path.name}'s; the stripped flatbuffer is not the same model")
    write_json(path.with_name(path.stem + ".tensor_names.json"), {"source": int8_path.name, "tensor_names": names})
    return path, shrink


def fidelity(bundle: ClassifierBundle, paths: dict[str, Path], test_limit: int | None, layer_images: int = 4) -> FidelityReport:
    test = test_split(bundle, test_limit)
    runtimes = [TorchRuntime(bundle.model), OnnxRuntime(paths["onnx_int8"], "onnx-int8"),
                LiteRTRuntime(paths["tflite_int8"], name="tflite-int8-litert"), TFLMRuntime(paths["tflite_int8_micro"], name="tflite-int8-tflm")]  # fmt: skip
    report = evaluate_runtimes(runtimes, test.images, test.labels, REFERENCE, bundle.classes)
    report.layers = layer_errors(paths["tflite_fp32"], paths["tflite_int8"], test.images[:layer_images])
    return report


def export(bundle: ClassifierBundle, fmt: str, int8: bool, out: Path, gate: FidelityGate = FidelityGate(), test_limit: int | None = None,
           ranges: str = DEFAULT_RANGES) -> ExportResult:  # fmt: skip
    check_range_method(ranges)  # before minutes of ONNX export, not at the TFLite step
    out.mkdir(parents=True, exist_ok=True)
    result = ExportResult()
    t0 = time.perf_counter()
    train_images, _ = labelled_subset(bundle)
    note = ranges_note(ranges, bundle.stage, calibration_count(len(train_images)))
    meta = artefact_meta(bundle, {"int8_ranges": note})
    if not int8 and fmt in ("onnx", "tflite"):
        path = export_fp32(bundle, fmt, out, train_images[:16])
        write_metadata(path, meta)
        result.artefacts[f"{fmt}_fp32"] = path
        return result
    paths = build_int8(bundle, out, train_images, ranges=ranges)
    paths["tflite_int8_micro"], shrink = build_micro(paths["tflite_int8"], out / "model_int8_micro.tflite", train_images[:8])
    report = fidelity(bundle, paths, test_limit)
    result.report = report
    settings = {**gate.to_dict(), "activation_ranges": ranges}
    write_json(out / "fidelity.json", {**report.to_dict(), **meta, **settings, "wall_s": round(time.perf_counter() - t0, 1)})
    (out / "fidelity.md").write_text(f"# Fidelity of the int8 artefacts\n\n{report.table()}\n\nLowest per-layer cosine:\n\n{report.layer_table()}\n\n{note}\n")
    check_fidelity(report, gate)
    result.arena = measure_arena(paths["tflite_int8_micro"])
    extra = {"tflite_int8_micro": {"source_flatbuffer": paths["tflite_int8"].name, "stripped": shrink.note()}}
    for key, path in paths.items():
        write_metadata(path, {**meta, "tflm_arena": result.arena if key.startswith("tflite_int8") else None, **extra.get(key, {})})
    result.artefacts.update(paths)
    if fmt == "c":
        arena = firmware_arena_bytes(result.arena["minimum_arena_size"])
        source, header = export_c_array(paths["tflite_int8_micro"], out, bundle.classes, arena, tflm_version=package_version("tflite-micro"))
        write_metadata(source, meta)
        result.artefacts.update({"c_source": source, "c_header": header})
    return result
