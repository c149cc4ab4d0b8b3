"""Fidelity report: top-1 of every runtime on real test images, argmax agreement, and per-layer
cosine / RMSE of int8 against fp32 activations, so a user sees where accuracy is lost."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edgessl.runtimes import Runtime
from edgessl.runtimes.litert import all_tensors

DEFAULT_MAX_DROP = 2.0  # top-1 points int8 may lose against fp32
DEFAULT_MIN_AGREEMENT = 90.0  # % of test images whose int8 argmax equals fp32's; 92.17-96.56 % in the five recorded CIFAR-10 deployments
DEFAULT_MAX_CLASS_DROP = 10.0  # top-1 points int8 may lose on one class; the s59 deployment's worst was 1.10 (horse, ONNX)
MIN_CLASS_IMAGES = 100  # fewer test images of a class make its top-1 too noisy to gate: 10 points would be a few images


@dataclass(frozen=True)
class FidelityGate:
    """What an int8 export must keep against fp32; a negative `max_class_drop` sets no per-class bound."""

    max_drop: float = DEFAULT_MAX_DROP
    min_agreement: float = DEFAULT_MIN_AGREEMENT
    max_class_drop: float = DEFAULT_MAX_CLASS_DROP

    def describe(self) -> str:
        per_class = f", no class more than {self.max_class_drop:g} points" if self.max_class_drop >= 0 else ""
        return f"top-1 at most {self.max_drop:g} points below fp32{per_class}, argmax agreement at least {self.min_agreement:g} %"

    def to_dict(self) -> dict:
        return {"max_drop_points": self.max_drop, "min_agreement_percent": self.min_agreement, "max_class_drop_points": self.max_class_drop,
                "min_class_images": MIN_CLASS_IMAGES}  # fmt: skip


class FidelityError(RuntimeError):
    """int8 accuracy fell further below fp32 than allowed; the message holds the table, `report` the numbers (a
    refused export still reports what it measured)."""

    def __init__(self, message: str, report: FidelityReport) -> None:
        super().__init__(message)
        self.report = report


@dataclass
class FidelityReport:
    test_images: int
    top1: dict[str, float]
    agreement_with_fp32: dict[str, float]
    versions: dict[str, str]
    layers: list[dict] = field(default_factory=list)
    per_class: dict[str, dict[str, float]] = field(default_factory=dict)  # runtime -> class -> top-1 %
    class_images: dict[str, int] = field(default_factory=dict)  # class -> test images of it
    reference: str = "pytorch-fp32"

    def class_changes(self, name: str) -> dict[str, float]:
        """Per class, this runtime's top-1 minus the reference's, in points (empty for the reference itself)."""
        ours, ref = self.per_class.get(name, {}), self.per_class.get(self.reference, {})
        return {c: ours[c] - ref[c] for c in ours if c in ref} if name != self.reference else {}

    def worst_class(self, name: str) -> str:
        """The class whose top-1 this runtime loses most against the reference's: a collapse of one class can hide
        in the overall top-1."""
        changes = self.class_changes(name)
        if not changes:
            return ""
        worst = min(changes, key=changes.__getitem__)
        return f"{worst} {changes[worst]:+.2f}" if changes[worst] < 0 else "none"

    def table(self) -> str:
        lines = [f"| runtime | top-1 % on {self.test_images} test images | argmax agreement with fp32 % | class losing most vs fp32 (points) | version |",
                 "|---|---|---|---|---|"]  # fmt: skip
        for name, top1 in self.top1.items():
            lines.append(f"| {name} | {top1:.2f} | {self.agreement_with_fp32[name]:.2f} | {self.worst_class(name)} | {self.versions[name]} |")
        return "\n".join(lines)

    def layer_table(self, worst: int = 10) -> str:
        lines = ["| layer output (int8 vs fp32 TFLite) | op | cosine | RMSE |", "|---|---|---|---|"]
        for row in sorted(self.layers, key=lambda r: r["cosine"])[:worst]:
            lines.append(f"| {row['tensor'][-70:]} | {row['op']} | {row['cosine']:.4f} | {row['rmse']:.4f} |")
        return "\n".join(lines)

    def to_dict(self) -> dict:
        return {
            "test_images": self.test_images,
            "top1": self.top1,
            "agreement_with_fp32": self.agreement_with_fp32,
            "versions": self.versions,
            "layers": self.layers,
            "per_class_top1": self.per_class,
            "class_images": self.class_images,
            "reference": self.reference,
        }


def evaluate_runtimes(runtimes: list[Runtime], images: np.ndarray, labels: np.ndarray, reference: str, classes: list[str] | None = None) -> FidelityReport:
    preds = {rt.name: rt.run(images).argmax(1) for rt in runtimes}
    top1 = {k: float((p == labels).mean() * 100) for k, p in preds.items()}
    agree = {k: float((p == preds[reference]).mean() * 100) for k, p in preds.items()}
    names = {c: classes[c] if classes else str(c) for c in np.unique(labels).tolist()}
    per_class = {k: {name: float((p[labels == c] == c).mean() * 100) for c, name in names.items()} for k, p in preds.items()}
    counts = {name: int((labels == c).sum()) for c, name in names.items()}
    versions = {rt.name: rt.version() for rt in runtimes}
    return FidelityReport(len(labels), top1, agree, versions, per_class=per_class, class_images=counts, reference=reference)


def layer_errors(fp32_tflite: Path, int8_tflite: Path, images: np.ndarray) -> list[dict]:
    """Per op output in the int8 graph: cosine similarity and RMSE against the same tensor of the fp32 graph, over the
    values of all `images` together. Per image, a sparse output (a squeeze-excite reduction after its ReLU) can be all
    zero, and its cosine 0 would flag a layer whose int8 error is nil."""
    from edgessl.deploy.tflite_graph import TFLiteGraph

    graph = TFLiteGraph.load(int8_tflite)
    pairs: dict[tuple[int, str, str], list[tuple[np.ndarray, np.ndarray]]] = {}
    for ref, q in zip(all_tensors(fp32_tflite, images), all_tensors(int8_tflite, images), strict=True):
        for op in graph.ops:
            name = op.output_name
            if name in ref and name in q and ref[name].shape == q[name].shape:
                pairs.setdefault((op.index, op.name, name), []).append((ref[name].ravel(), q[name].ravel()))
    return [{"op_index": idx, "op": op, "tensor": tensor, **pooled_error(values)} for (idx, op, tensor), values in sorted(pairs.items())]


def pooled_error(pairs: list[tuple[np.ndarray, np.ndarray]]) -> dict[str, float]:
    """Cosine and RMSE of (reference, quantised) output pairs, their values pooled over the images."""
    a = np.concatenate([ref for ref, _ in pairs]).astype(np.float64)
    b = np.concatenate([q for _, q in pairs]).astype(np.float64)
    norms = np.linalg.norm(a) * np.linalg.norm(b)
    # all zero in both graphs (a squeeze-excite reduction that ReLU zeroed on every image): identical, not unrelated
    cosine = float(a @ b / norms) if norms > 0 else float(not a.any() and not b.any())
    return {"cosine": cosine, "rmse": float(np.sqrt(np.mean((a - b) ** 2)))}


def check_fidelity(report: FidelityReport, gate: FidelityGate) -> None:
    """Fail when an int8 runtime's top-1 falls more than `gate.max_drop` points below the report's reference, when its
    argmax agrees with the reference's on fewer than `gate.min_agreement` % of the test images, or when one class with
    at least MIN_CLASS_IMAGES test images loses more than `gate.max_class_drop` points. Top-1 alone can hold while
    predictions flip both ways: a 65-epoch CIFAR-10 encoder lost 0.05 points in TFLite Micro int8 with 7.6 % of its
    answers changed (benchmarks/results/README.md, Deployment); and a collapsed class shows in the overall top-1 only
    as its share of the test images."""
    problems = []
    for name, top1 in report.top1.items():
        if name == report.reference:
            continue
        drop, agreement = report.top1[report.reference] - top1, report.agreement_with_fp32[name]
        if drop > gate.max_drop:
            problems.append(f"{name}: top-1 {drop:.2f} points below {report.reference} (dropped more than {gate.max_drop} points)")
        if agreement < gate.min_agreement:
            problems.append(f"{name}: argmax agrees with {report.reference} on {agreement:.2f} % of the test images (floor {gate.min_agreement} %)")
        if gate.max_class_drop >= 0:
            problems += class_drops(report, name, gate.max_class_drop)
    if problems:
        listed = "\n".join(f"- {p}" for p in problems)
        message = f"int8 fidelity gate failed:\n{listed}\n\n{report.table()}\n\nWhere it is lost (lowest cosine first):\n{report.layer_table()}"
        raise FidelityError(message, report)


def class_drops(report: FidelityReport, name: str, max_class_drop: float) -> list[str]:
    """One line per class, among those with enough test images to judge, that `name` loses more than `max_class_drop`
    top-1 points on against the reference."""
    judged = {c: -change for c, change in report.class_changes(name).items() if report.class_images.get(c, 0) >= MIN_CLASS_IMAGES}
    return [f"{name}: class {c!r} top-1 {drop:.2f} points below {report.reference} ({report.class_images[c]} test images; "
            f"dropped more than {max_class_drop} points)" for c, drop in judged.items() if drop > max_class_drop]  # fmt: skip
