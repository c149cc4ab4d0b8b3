import pytest
import torch
import torch.nn.functional as F
from torch import nn

from edgessl.deploy.classifier import build_classifier
from edgessl.deploy.exporters.tflite import export_tflite_fp32
from edgessl.deploy.opcheck import UnsupportedOpError, check_tflite_model, check_torch_model
from edgessl.eval.probe import ProbeHead
from edgessl.models import create_encoder


def _classifier() -> nn.Module:
    return build_classifier(create_encoder("tinynext_t", 32), ProbeHead(192, 10))


def test_exact_gelu_is_rejected_naming_the_layer():
    model = _classifier()
    model.encoder.stage3[2].mlp[0][2] = nn.GELU()
    with pytest.raises(UnsupportedOpError, match=r"encoder\.stage3\.2\.mlp\.0\.2.*GELU"):
        check_torch_model(model)
    check_torch_model(_classifier())


class _TanhGeluNet(nn.Module):
    """Functional GELU: invisible to the module-level check, so the TFLite-level check must catch it."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.gelu(x.mean(dim=(1, 2)), approximate="tanh")


def test_tflite_with_an_op_tflm_lacks_is_rejected_naming_op_and_tensor(tmp_path):
    path = export_tflite_fp32(_TanhGeluNet(), tmp_path / "gelu.tflite", 8)
    with pytest.raises(UnsupportedOpError, match="op GELU producing"):
        check_tflite_model(path)
