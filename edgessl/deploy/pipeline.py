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
from edgessl.eval.finetune import Classifier, train_classifier
from edgessl.eval.probe import ProbeHead
from edgessl.models import create_encoder
from edgessl.models.tinynext import OUTPUT_STAGES, TinyNeXt
from edgessl.train.checkpoint import load, save_atomic

FORMATS = ("onnx", "tflite", "c")


# What a run folder resolves to, most finished first: QAT'd classifier, fine-tuned classifier, linear probe.
CHECKPOINTS = {"classifier.pt": "edgessl finetune --qat", "finetuned.pt": "edgessl finetune", "probe.pt": "edgessl probe / pretrain"}
FP32_SOURCES = ("finetuned.pt", "probe.pt")  # what QAT starts from in a run folder


@dataclass
class ClassifierBundle:
    model: DeployableClassifier  # BN folded, eval
    classes: list[str]
    data: str
    label_fraction: float
    seed: int
    source: str
    recipe: dict
    stage: str  # "probe", "finetune" or "qat"


def resolve_checkpoint(path: Path, names: tuple[str, ...] = tuple(CHECKPOINTS)) -> Path:
    """A file as is; in a run folder the first of `names` that exists."""
    path = Path(path)
    if path.is_dir():
        for name in names:
            if (path / name).is_file():
                return path / name
        wanted = " or ".join(f"{name} ({CHECKPOINTS[name]})" for name in names)
        raise FileNotFoundError(f"{path} has no {wanted}")
    return path


def load_bundle(path: Path, names: tuple[str, ...] = tuple(CHECKPOINTS)) -> ClassifierBundle:
    """A run folder, probe.pt (encoder + linear probe), finetuned.pt or classifier.pt (after QAT)."""
    path = resolve_checkpoint(path, names)
    payload = load(path)
    kind = payload.get("kind")
    if kind == "edgessl-classifier":
        model = _empty_classifier(payload["encoder"], payload["image_size"], len(payload["classes"]), tuple(payload.get("stages", OUTPUT_STAGES)))
        model.load_state_dict(payload["state_dict"])
        stage = payload.get("stage", "qat")  # classifiers saved before fine-tuning existed all came from QAT
        return ClassifierBundle(model.eval(), payload["classes"], payload["data"], payload["label_fraction"], payload["seed"], str(path), payload["recipe"], stage)
    if kind == "edgessl-probe":
        encoder, recipe = probe_encoder(payload)
        result = payload["result"]
        stages = tuple(result.get("stages", OUTPUT_STAGES))  # probes saved before stages existed read the encoder's output
        head = ProbeHead(encoder.pooled_dim(stages), len(payload["head"]["linear.bias"]))
        head.load_state_dict(payload["head"])
        return ClassifierBundle(build_classifier(encoder, head, stages=stages), payload["classes"], payload.get("data", recipe["data"]["path"]),
                                result["label_fraction"], result["seed"], str(path), recipe, "probe")  # fmt: skip
    raise ValueError(f"{path} is not an edgessl probe or classifier checkpoint (kind {kind!r})")


def finetune_probe(path: Path, epochs: int = 20, lr: float | None = None, device: str = "cpu") -> ClassifierBundle:
    """The probe's encoder and a fresh linear head on its output, trained end to end on the probe's labelled subset
    (its fraction and seed) with the protocol `benchmarks/label_efficiency.py` measures (SGD one-cycle, crop + flip)."""
    path = resolve_checkpoint(path, ("probe.pt",))
    payload = load(path)
    if payload.get("kind") != "edgessl-probe":
        raise ValueError(f"{path} is not a probe checkpoint (kind {payload.get('kind')!r}): fine-tuning starts from the probe.pt of `edgessl probe`")
    encoder, recipe = probe_encoder(payload)
    data, result = payload.get("data", recipe["data"]["path"]), payload["result"]
    train = load_split(data, "train", encoder.image_size)
    model = finetuned_classifier(encoder, train, result["label_fraction"], result["seed"], epochs, lr, device)
    return ClassifierBundle(model, payload["classes"], data, result["label_fraction"], result["seed"], str(path), recipe, "finetune")


def finetuned_classifier(encoder: TinyNeXt, train: ImageArrays, fraction: float, seed: int, epochs: int = 20, lr: float | None = None, device: str = "cpu") -> DeployableClassifier:
    """`train_classifier` with SGD (the optimiser `benchmarks/label_efficiency.py` measures), as a deployable classifier."""
    return deployable(train_classifier(encoder, train, fraction, epochs, seed, "sgd", lr, device=device).cpu())


def deployable(model: Classifier) -> DeployableClassifier:
    """A fine-tuned encoder + linear head in the deployable form: raw NHWC pixels in, BatchNorm folded."""
    features = model.head.in_features
    head = ProbeHead.from_linear(model.head, torch.zeros(features), torch.ones(features))  # no standardisation: trained on raw features
    return build_classifier(model.encoder, head)


def probe_encoder(probe: dict) -> tuple[TinyNeXt, dict]:
    """The pretrained encoder a probe checkpoint was trained on (BatchNorm unfolded), and its recipe."""
    enc_payload = load(Path(probe["encoder_checkpoint"]))
    encoder = create_encoder(enc_payload["encoder"], enc_payload["image_size"])
    encoder.load_state_dict(enc_payload["state_dict"])
    return encoder, enc_payload["recipe"]


def _empty_classifier(encoder_name: str, image_size: int, classes: int, stages: tuple[str, ...]) -> DeployableClassifier:
    encoder = create_encoder(encoder_name, image_size)
    return build_classifier(encoder, ProbeHead(encoder.pooled_dim(stages), classes), stages=stages)


def save_bundle(bundle: ClassifierBundle, path: Path) -> None:
    model = bundle.model
    save_atomic({"kind": "edgessl-classifier", "stage": bundle.stage, "encoder": bundle.recipe.get("encoder", "tinynext_t"),
                 "image_size": model.encoder.image_size, "stages": list(model.stages), "state_dict": model.state_dict(), "classes": bundle.classes, "data": bundle.data,
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
