"""Label-efficiency curve: linear probe of a pretrained encoder at several label fractions, full
fine-tuning at one fraction, and supervised training from scratch at the same fractions (same epochs,
same crop + flip augmentation as the fine-tuning).

    python benchmarks/label_efficiency.py --encoder runs/ssl_protocol_cifar10/encoder.pt --data ../shared/data/cifar10
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
import _common
from _common import command_line, environment, host_text, read_results, write_results

from edgessl.data.cache import load_split
from edgessl.data.readers import ImageArrays
from edgessl.data.splits import label_fraction_indices
from edgessl.eval.features import extract_features, load_encoder
from edgessl.eval.finetune import DEFAULT_LR, evaluate, train_classifier
from edgessl.eval.probe import fit_probe
from edgessl.models import create_encoder

PROBE, FINETUNE, SCRATCH = "linear probe (frozen SSL encoder)", "fine-tuned SSL encoder", "supervised from scratch"
SUMMARY_PREFIX = {PROBE: "probe_top1", FINETUNE: "finetune_top1", SCRATCH: "supervised_scratch_top1"}


def probe_curve(encoder: torch.nn.Module, train: ImageArrays, test: ImageArrays, fractions: list[float], epochs: int, seed: int, device: str = "cpu") -> dict[str, float]:
    """Features of the whole train split once; one probe per fraction on its stratified subset."""
    f_all, f_test = extract_features(encoder, train.images, device=device), extract_features(encoder, test.images, device=device)
    classes = int(train.labels.max()) + 1
    out = {}
    for fraction in fractions:
        idx = label_fraction_indices(train.labels, fraction, seed)
        out[f"{fraction:g}"], _ = fit_probe(f_all[idx], train.labels[idx], f_test, test.labels, classes, epochs, seed)
        print(f"probe {fraction:>5.0%}: {out[f'{fraction:g}']:.2f} %", flush=True)
    return out


def scratch_protocol(args: argparse.Namespace, payload: dict) -> dict:
    """What a supervised-from-scratch row depends on: not the pretrained weights, only their architecture."""
    lr = args.lr or DEFAULT_LR[args.optimizer]
    return {"data": args.data, "epochs": args.epochs, "optimizer": args.optimizer, "lr": lr, "seed": args.seed, "encoder": payload["encoder"], "image_size": payload["image_size"]}


def kept_scratch(protocol: dict, output: str = "label_efficiency") -> tuple[dict[str, float], dict]:
    """--keep-scratch: the stored from-scratch rows and where they came from; refused if their protocol differs."""
    old = read_results(output)
    if "scratch_protocol" not in old:
        raise SystemExit(f"--keep-scratch: benchmarks/results/{output}.json has no from-scratch rows with their protocol; run without it")
    if old["scratch_protocol"] != protocol:
        raise SystemExit(f"--keep-scratch: the stored from-scratch rows were measured under {old.get('scratch_protocol')}, not {protocol}; run without it")
    return old["rows"][SCRATCH], old.get("scratch_source") or {"date": old["environment"]["date"], "command": old["command"]}


def plot(rows: dict[str, dict[str, float]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for name, points in rows.items():
        if not points:
            continue
        xs = sorted(points, key=float)
        ax.plot([float(x) * 100 for x in xs], [points[x] for x in xs], marker="o", label=name)
    ax.set_xscale("log")
    ax.set_xlabel("labels used (%)")
    ax.set_ylabel("test top-1 (%)")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def markdown(rows: dict[str, dict[str, float]], fractions: list[float], protocol: str, plot_file: str) -> str:
    head = "| | " + " | ".join(f"{f:.0%}" for f in fractions) + " |"
    lines = ["# Label efficiency", "", protocol, "", head, "|---" * (len(fractions) + 1) + "|"]
    for name, points in rows.items():
        if not points:
            continue
        lines.append(f"| {name} | " + " | ".join(f"{points[f'{f:g}']:.2f}" if f"{f:g}" in points else "-" for f in fractions) + " |")
    return "\n".join([*lines, "", f"![label efficiency]({plot_file})", ""])


def supervised_curve(
    args: argparse.Namespace, train: ImageArrays, test: ImageArrays, fractions: list[float], fresh_encoder: Callable[[], torch.nn.Module], label: str
) -> dict[str, float]:
    """Full supervised training of a fresh `fresh_encoder()` at each fraction: fine-tuning and from scratch alike."""
    out = {}
    for fraction in fractions:
        model = train_classifier(fresh_encoder(), train, fraction, args.epochs, args.seed, args.optimizer, args.lr, device=args.device)
        out[f"{fraction:g}"] = evaluate(model, test, args.device)
        print(f"{label} {fraction:.0%}: {out[f'{fraction:g}']:.2f} %", flush=True)
    return out


def finetune_curve(args: argparse.Namespace, train: ImageArrays, test: ImageArrays) -> dict[str, float]:
    """Full fine-tuning of a fresh copy of the pretrained encoder at each fraction."""
    return supervised_curve(args, train, test, args.finetune_fractions, lambda: load_encoder(args.encoder)[0], "fine-tune")


def scratch_curve(args: argparse.Namespace, payload: dict, train: ImageArrays, test: ImageArrays, kept: dict[str, float]) -> dict[str, float]:
    """Supervised training from the same seeded random initialisation at each fraction not in `kept`."""

    def seeded_random_init() -> torch.nn.Module:
        torch.manual_seed(args.seed)
        return create_encoder(payload["encoder"], payload["image_size"])

    fractions = args.supervised_fractions if args.supervised_fractions is not None else args.finetune_fractions
    return supervised_curve(args, train, test, [f for f in fractions if f"{f:g}" not in kept], seeded_random_init, "scratch")


def summary(rows: dict[str, dict[str, float]]) -> dict[str, float]:
    return {f"{SUMMARY_PREFIX[name]}_{fraction}": round(top1, 2) for name, points in rows.items() for fraction, top1 in points.items()}


def protocol_text(args: argparse.Namespace, lr: float, test_images: int, minutes: float, env: dict, source: dict | None) -> str:
    text = (
        f"Reproduce: `{command_line()}`\n\nMeasured: encoder `{args.encoder}`, seed {args.seed}, stratified label fractions, linear probe "
        f"{args.probe_epochs} epochs on standardised pooled features; fine-tuning and scratch: {args.epochs} epochs, {args.optimizer} {lr:g} "
        f"one-cycle, crop + flip; top-1 on {test_images} test images; {host_text(env)}, torch {env['torch']}, {minutes:.0f} min, {env['date']}."
    )
    if source:
        text += f" Supervised-from-scratch rows kept from the run of {source['date']} (`{source['command']}`): same data, epochs, optimiser and seed."
    return text


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--encoder", type=Path, required=True)
    p.add_argument("--data", default="../shared/data/cifar10")
    p.add_argument("--fractions", type=float, nargs="+", default=[0.01, 0.05, 0.1, 0.2, 1.0])
    p.add_argument("--probe-epochs", type=int, default=100)
    p.add_argument("--finetune-fractions", type=float, nargs="*", default=[0.2])
    p.add_argument("--supervised-fractions", type=float, nargs="*", help="default: the fine-tuning fractions")
    p.add_argument("--epochs", type=int, default=30, help="fine-tuning and supervised-from-scratch epochs")
    p.add_argument("--optimizer", choices=sorted(DEFAULT_LR), default="sgd", help="fine-tuning and scratch (SGD: momentum 0.9, nesterov, wd 5e-4)")
    p.add_argument("--lr", type=float, help="peak one-cycle learning rate (default: 0.1 for sgd, 2e-3 for adamw)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    p.add_argument("--output", default="label_efficiency", help="results file stem under benchmarks/results (ssl_protocol.py reads label_efficiency)")
    p.add_argument("--keep-scratch", action="store_true", help="reuse the stored from-scratch rows (same data, epochs, optimiser, seed): they do not depend on the encoder")
    return p.parse_args()


def main() -> None:
    args = parse_args()
    t0 = time.perf_counter()
    encoder, payload = load_encoder(args.encoder)
    train, test = load_split(args.data, "train", payload["image_size"]), load_split(args.data, "test", payload["image_size"])
    protocol = scratch_protocol(args, payload)
    kept, source = kept_scratch(protocol, args.output) if args.keep_scratch else ({}, None)
    rows = {
        PROBE: probe_curve(encoder, train, test, args.fractions, args.probe_epochs, args.seed, args.device),
        FINETUNE: finetune_curve(args, train, test),
        SCRATCH: kept | scratch_curve(args, payload, train, test, kept),
    }
    env = environment()
    text = protocol_text(args, protocol["lr"], len(test), (time.perf_counter() - t0) / 60, env, source)
    stored = {"summary": summary(rows), "rows": rows, "epochs": args.epochs, "scratch_protocol": protocol, "environment": env, "command": command_line()}
    if source:
        stored["scratch_source"] = source
    fractions = sorted(set(args.fractions) | set(args.finetune_fractions) | {float(f) for f in rows[SCRATCH]})
    write_results(args.output, stored, markdown(rows, fractions, text, f"{args.output}.png"))
    plot(rows, _common.RESULTS / f"{args.output}.png")


if __name__ == "__main__":
    main()
