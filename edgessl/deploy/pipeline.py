"""From checkpoints to deployable classifiers and verified artefacts; the CLI's deploy commands call this."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from edgessl.data.cache import load_split
from edgessl.data.readers import ImageArrays
from edgessl.data.splits import label_fraction_indices
from edgessl.deploy.classifier import DeployableClassifier, build_classifier
from edgessl.eval.probe import ProbeHead
from edgessl.models import create_encoder
from edgessl.models.tinynext import OUTPUT_STAGES
from edgessl.train.checkpoint import load, save_atomic

FORMATS = ("onnx", "tflite", "c")


@dataclass
class ClassifierBundle:
    model: DeployableClassifier  # BN folded, eval
    classes: list[str]
    data: str
    label_fraction: float
    seed: int
    source: str
    recipe: dict
    stage: str  # "probe" or "qat"


def _resolve(path: Path) -> Path:
    if path.is_dir():
        for name in ("classifier.pt", "probe.pt"):
            if (path / name).is_file():
                return path / name
        raise FileNotFoundError(f"{path} has no classifier.pt (edgessl finetune) or probe.pt (edgessl probe / pretrain)")
    return path


def load_bundle(path: Path) -> ClassifierBundle:
    """A run folder, probe.pt (encoder + linear probe) or classifier.pt (after QAT)."""
    path = _resolve(Path(path))
    payload = load(path)
    kind = payload.get("kind")
    if kind == "edgessl-classifier":
        model = _empty_classifier(payload["encoder"], payload["image_size"], len(payload["classes"]), tuple(payload.get("stages", OUTPUT_STAGES)))
        model.load_state_dict(payload["state_dict"])
        return ClassifierBundle(model.eval(), payload["classes"], payload["data"], payload["label_fraction"], payload["seed"], str(path), payload["recipe"], "qat")
    if kind == "edgessl-probe":
        enc_payload = load(Path(payload["encoder_checkpoint"]))
        encoder = create_encoder(enc_payload["encoder"], enc_payload["image_size"])
        encoder.load_state_dict(enc_payload["state_dict"])
        result = payload["result"]
        stages = tuple(result.get("stages", OUTPUT_STAGES))  # probes saved before stages existed read the encoder's output
        head = ProbeHead(encoder.pooled_dim(stages), len(payload["head"]["linear.bias"]))
        head.load_state_dict(payload["head"])
        recipe = enc_payload["recipe"]
        return ClassifierBundle(build_classifier(encoder, head, stages=stages), payload["classes"], payload.get("data", recipe["data"]["path"]),
                                result["label_fraction"], result["seed"], str(path), recipe, "probe")  # fmt: skip
    raise ValueError(f"{path} is not an edgessl probe or classifier checkpoint (kind {kind!r})")


def _empty_classifier(encoder_name: str, image_size: int, classes: int, stages: tuple[str, ...]) -> DeployableClassifier:
    encoder = create_encoder(encoder_name, image_size)
    return build_classifier(encoder, ProbeHead(encoder.pooled_dim(stages), classes), stages=stages)


def save_bundle(bundle: ClassifierBundle, path: Path) -> None:
    model = bundle.model
    save_atomic({"kind": "edgessl-classifier", "encoder": bundle.recipe.get("encoder", "tinynext_t"), "image_size": model.encoder.image_size,
                 "stages": list(model.stages), "state_dict": model.state_dict(), "classes": bundle.classes, "data": bundle.data,
                 "label_fraction": bundle.label_fraction, "seed": bundle.seed, "recipe": bundle.recipe, "source": bundle.source}, path)  # fmt: skip


def labelled_subset(bundle: ClassifierBundle) -> tuple[np.ndarray, np.ndarray]:
    """The same label-fraction subset the probe used (same fraction, same seed)."""
    train = load_split(bundle.data, "train", bundle.model.image_size)
    idx = label_fraction_indices(train.labels, bundle.label_fraction, bundle.seed)
    return train.images[idx], train.labels[idx]


def test_split(bundle: ClassifierBundle, limit: int | None = None) -> ImageArrays:
    test = load_split(bundle.data, bundle.recipe.get("data", {}).get("test_split", "test"), bundle.model.image_size)
    if limit is not None and limit < len(test):
        return ImageArrays(test.images[:limit], test.labels[:limit], test.classes)
    return test


@torch.no_grad()
def torch_top1(model: nn.Module, test: ImageArrays, batch: int = 500) -> float:
    model.eval()
    correct = 0
    for i in range(0, len(test), batch):
        logits = model(torch.from_numpy(test.images[i : i + batch]).float())
        correct += int((logits.argmax(1).numpy() == test.labels[i : i + batch]).sum())
    return correct / len(test) * 100


def artefact_meta(bundle: ClassifierBundle, extra: dict | None = None) -> dict:
    return {"source_checkpoint": bundle.source, "stage": bundle.stage, "recipe": bundle.recipe.get("name"), "data": bundle.data,
            "label_fraction": bundle.label_fraction, "seed": bundle.seed, "classes": bundle.classes, **(extra or {})}  # fmt: skip


def write_json(path: Path, payload: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2))
