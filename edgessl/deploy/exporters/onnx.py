"""PyTorch -> ONNX fp32 (torch.onnx dynamo exporter) -> ONNX int8 QDQ (onnxruntime static quantisation)."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import torch

from edgessl.deploy.ranges import DEFAULT_RANGES, check_range_method

# onnxruntime has no MSE range search; its percentile clipping (99.999 %) is the nearest outlier-clipping method. On
# two CIFAR-10 encoders it raised argmax agreement with fp32 by 0.39 and 0.88 points over MinMax, top-1 +0.15 / -0.14
# (benchmarks/results/README.md, Deployment).
ORT_CALIBRATION = {"minmax": "MinMax", "mse": "Percentile"}


def export_onnx_fp32(model: torch.nn.Module, path: Path, image_size: int) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    example = torch.rand(1, image_size, image_size, 3) * 255
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model.eval(), (example,), str(path), dynamo=True, external_data=False, input_names=["image"], output_names=["logits"])
    return path


def quantize_onnx_int8(fp32_path: Path, calibration: list[np.ndarray], path: Path, ranges: str = DEFAULT_RANGES) -> Path:
    """QDQ format, per-channel int8 weights, int8 activations calibrated on real images; `ranges`: onnxruntime's
    calibration method for each of edgessl's range methods (ORT_CALIBRATION)."""
    from onnxruntime.quantization import CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    check_range_method(ranges)

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.items = iter(calibration)

        def get_next(self) -> dict | None:
            x = next(self.items, None)
            return None if x is None else {"image": x.astype(np.float32)}

    prepared = path.with_name(path.stem + ".pre.onnx")
    quant_pre_process(str(fp32_path), str(prepared), skip_symbolic_shape=True)
    quantize_static(str(prepared), str(path), Reader(), quant_format=QuantFormat.QDQ, per_channel=True, activation_type=QuantType.QInt8,
                    weight_type=QuantType.QInt8, calibrate_method=getattr(CalibrationMethod, ORT_CALIBRATION[ranges]))  # fmt: skip
    prepared.unlink()
    return path
