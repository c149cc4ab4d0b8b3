"""From a CIFAR-10 pretraining run to verified int8 artefacts: linear probe, NNCF QAT on the same
labelled subset, then ONNX / TFLite int8 / C exports with the fidelity report on the test set.

    python benchmarks/deploy.py --run runs/ssl_protocol_cifar10
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _common import command_line, environment, host_text, write_results

from edgessl.data.cache import load_split
from edgessl.data.readers import ImageArrays
from edgessl.deploy.classifier import build_classifier
from edgessl.deploy.export import export, ranges_note
from edgessl.deploy.fidelity import DEFAULT_MAX_CLASS_DROP, DEFAULT_MAX_DROP, DEFAULT_MIN_AGREEMENT, FidelityError, FidelityGate, FidelityReport
from edgessl.deploy.pipeline import ClassifierBundle, finetuned_classifier, labelled_subset, save_bundle, test_split, torch_top1
from edgessl.deploy.qat import QAT_EPOCHS, qat_finetune
from edgessl.deploy.ranges import DEFAULT_RANGES, RANGE_METHODS
from edgessl.eval.features import load_encoder
from edgessl.eval.probe import ProbeResult, probe_with
from edgessl.models.tinynext import parse_stages
from edgessl.recipe import recipe_from_dict
from edgessl.runtimes.tflm import measure_arena


def encoder_source(run: Path) -> str:
    """Which pretraining the deployed encoder comes from: ssl_protocol.py names its run folders after its sections."""
    section = run.name.removeprefix("ssl_protocol_")
    if section != run.name:
        return f"encoder: section `{section}` of ssl_protocol.md, pretrained by its command"
    return f"encoder: `{run / 'encoder.pt'}` from `edgessl pretrain --out {run}`"


def summarise(rep: FidelityReport, fp32_probe: float, fake_quant: float, arena: dict, export: Path, gate_passed: bool, ranges: str) -> dict:
    """The headline numbers: top-1 in every runtime, the int8 drop and agreement, and what the firmware carries."""
    return {
        "fp32_top1": round(rep.top1["pytorch-fp32"], 2),
        "onnx_int8_top1": round(rep.top1["onnx-int8"], 2),
        "tflite_int8_litert_top1": round(rep.top1["tflite-int8-litert"], 2),
        "tflite_int8_tflm_top1": round(rep.top1["tflite-int8-tflm"], 2),
        "test_images": rep.test_images,
        "fp32_probe_before_qat_top1": round(fp32_probe, 2),
        "nncf_fake_quant_top1": round(fake_quant, 2),
        "tflm_vs_fp32_drop_points": round(rep.top1["pytorch-fp32"] - rep.top1["tflite-int8-tflm"], 2),
        "tflm_agreement_with_fp32_percent": round(rep.agreement_with_fp32["tflite-int8-tflm"], 2),
        "lowest_layer_cosine": round(min(row["cosine"] for row in rep.layers), 4),
        "tflm_arena_bytes": arena["minimum_arena_size"],
        "tflite_int8_bytes": (export / "model_int8.tflite").stat().st_size,
        "firmware_flatbuffer_bytes": (export / "model_int8_micro.tflite").stat().st_size,  # what the C array embeds
        "fidelity_gate_passed": gate_passed,
        "activation_ranges": ranges,
    }


def probed_bundle(run: Path, stages: tuple[str, ...]) -> tuple[ClassifierBundle, ProbeResult]:
    """The run's encoder with a linear probe head, fitted on the labelled subset its recipe names."""
    encoder, payload = load_encoder(run / "encoder.pt")
    recipe, p = payload["recipe"], recipe_from_dict(payload["recipe"]).probe  # stored recipes lack keys added since
    data = recipe["data"]["path"]
    train, test = load_split(data, "train", payload["image_size"]), load_split(data, "test", payload["image_size"])
    probe, head, _ = probe_with(encoder, train, test, p, stages=stages)
    print(probe.protocol(), f"-> {probe.top1:.2f} %", flush=True)
    model = build_classifier(encoder, head, stages=stages)
    return ClassifierBundle(model, train.classes, data, p.label_fraction, p.seed, str(run / "encoder.pt"), recipe, "probe"), probe


def finetune(bundle: ClassifierBundle, epochs: int, test: ImageArrays) -> float:
    """The bundle's encoder and a fresh head trained end to end on its labelled subset (what `edgessl finetune` does);
    the bundle then holds that classifier. Returns its fp32 top-1."""
    train = load_split(bundle.data, "train", bundle.model.image_size)
    encoder = load_encoder(Path(bundle.source))[0]  # unfolded: the bundle's copy has its BatchNorm folded away
    bundle.model, bundle.stage = finetuned_classifier(encoder, train, bundle.label_fraction, bundle.seed, epochs), "finetune"
    top1 = torch_top1(bundle.model, test)
    print(f"fine-tuned {epochs} epochs (SGD one-cycle, crop + flip): fp32 {top1:.2f} %", flush=True)
    return top1


def fidelity_gate(args: argparse.Namespace) -> FidelityGate:
    return FidelityGate(args.max_drop, args.min_agreement, args.max_class_drop)


def gated_export(bundle: ClassifierBundle, args: argparse.Namespace) -> tuple[FidelityReport, dict, dict[str, str], bool]:
    """Export behind the fidelity gate; a refused export still reports what was measured. Returns the report, the
    arena, the artefacts and whether the gate passed."""
    try:
        result = export(bundle, "c", True, args.run / "export", fidelity_gate(args), args.test_limit, args.ranges)
    except FidelityError as err:
        print(err, flush=True)
        return err.report, measure_arena(args.run / "export" / "model_int8_micro.tflite"), {}, False
    return result.report, result.arena, {k: str(v) for k, v in result.artefacts.items()}, True


def markdown(args: argparse.Namespace, probe: ProbeResult, qat_steps: int, labelled: int, rep: FidelityReport, summary: dict, env: dict) -> str:
    s = summary
    return "\n".join([f"# Deployment fidelity: {args.run.name}", "", f"Reproduce: `{command_line()}` ({encoder_source(args.run)})", "",
          f"Linear probe ({probe.protocol()}), {finetune_text(args, s)}then NNCF QAT for {args.qat_epochs} epochs ({qat_steps} steps) on the same {labelled} labelled images; "
          f"{ranges_note(args.ranges, 'qat')} {host_text(env)}, torch {env['torch']}, {env['date']}.", "",
          rep.table(), "", f"NNCF fake-quant top-1: {s['nncf_fake_quant_top1']:.2f} %; fp32 probe before QAT: {s['fp32_probe_before_qat_top1']:.2f} %.", "",
          f"Fidelity gate ({fidelity_gate(args).describe()}): "
          f"{'passed' if s['fidelity_gate_passed'] else 'FAILED: the C export was refused'}.", "",
          f"TFLite Micro arena (measured, bisection-confirmed): {s['tflm_arena_bytes']:,} bytes; int8 model {s['tflite_int8_bytes']:,} bytes, "
          f"{s['firmware_flatbuffer_bytes']:,} as the firmware embeds it (`model_int8_micro.tflite`: tensor names stripped, weight zero points stored once).", "",
          "Lowest per-layer cosine, int8 vs fp32 TFLite:", "", rep.layer_table(), ""])  # fmt: skip


def finetune_text(args: argparse.Namespace, summary: dict) -> str:
    if not args.finetune_epochs:
        return ""
    return (f"then the encoder and a fresh linear head fine-tuned end to end for {args.finetune_epochs} epochs on those labels (SGD 0.1 one-cycle, "
            f"crop + flip; fp32 top-1 {summary['fp32_finetuned_before_qat_top1']:.2f} %, `edgessl finetune`), ")  # fmt: skip


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--run", type=Path, required=True, help="run folder with encoder.pt")
    p.add_argument("--qat-epochs", type=int, default=QAT_EPOCHS)
    p.add_argument("--finetune-epochs", type=int, default=0, help="fine-tune encoder + a fresh head end to end before QAT (edgessl finetune); 0: deploy the probe")
    p.add_argument("--test-limit", type=int, default=None, help="default: the whole test split")
    p.add_argument("--name", default="deploy_cifar10")
    p.add_argument("--max-drop", type=float, default=DEFAULT_MAX_DROP, help="fidelity gate: int8 top-1 points below fp32")
    p.add_argument("--min-agreement", type=float, default=DEFAULT_MIN_AGREEMENT, help="fidelity gate: %% of test images where int8 and fp32 agree")
    p.add_argument("--max-class-drop", type=float, default=DEFAULT_MAX_CLASS_DROP, help="fidelity gate: int8 top-1 points below fp32 on one class; negative: off")
    p.add_argument("--ranges", default=DEFAULT_RANGES, choices=RANGE_METHODS, help="how the int8 activation ranges (TFLite and ONNX) are chosen")
    p.add_argument("--stages", default="stage4", help="comma-separated stages whose pooled outputs the probe head reads, e.g. stage3,stage4")
    return p.parse_args()


def main() -> None:
    args = parse_args()
    t0 = time.perf_counter()
    bundle, probe = probed_bundle(args.run, parse_stages(args.stages))
    images, labels = labelled_subset(bundle)
    test_eval = test_split(bundle, args.test_limit)
    fp32_probe = torch_top1(bundle.model, test_eval)
    fp32_finetuned = finetune(bundle, args.finetune_epochs, test_eval) if args.finetune_epochs else None
    qat = qat_finetune(bundle.model, images, labels, epochs=args.qat_epochs, seed=bundle.seed)
    fake_quant = torch_top1(qat.fake_quant, test_eval)
    bundle.model, bundle.stage = qat.model, "qat"
    save_bundle(bundle, args.run / "classifier.pt")
    print(f"fp32 probe {fp32_probe:.2f} %, NNCF fake-quant after QAT {fake_quant:.2f} %", flush=True)
    rep, arena, artefacts, gate_passed = gated_export(bundle, args)
    summary = summarise(rep, fp32_probe, fake_quant, arena, args.run / "export", gate_passed, args.ranges)
    if fp32_finetuned is not None:
        summary["fp32_finetuned_before_qat_top1"] = round(fp32_finetuned, 2)
    env = environment()
    payload = {"summary": summary, "fidelity": rep.to_dict(), "qat_steps": qat.steps, "qat_epochs": args.qat_epochs, "artefacts": artefacts,
               "environment": env, "command": command_line(), "wall_s": round(time.perf_counter() - t0, 1)}  # fmt: skip
    write_results(args.name, payload, markdown(args, probe, qat.steps, len(labels), rep, summary, env))
    if not gate_passed:
        sys.exit(1)


if __name__ == "__main__":
    main()
