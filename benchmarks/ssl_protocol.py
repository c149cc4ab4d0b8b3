"""The paper protocol: self-supervised pretraining, then a linear probe with 20 % of the labels.

Beside the result: the published number, a random-init encoder's probe, and supervised training from
scratch on the same labelled subset. Run once per data set; results accumulate per data set in
benchmarks/results/ssl_protocol.{json,md}.

    python benchmarks/ssl_protocol.py --data ../shared/data/cifar10
    python benchmarks/ssl_protocol.py --data ../shared/data/tiny-imagenet-200 --recipe recipes/tinyimagenet.yaml
    torchrun --nproc_per_node 2 benchmarks/ssl_protocol.py --data ../shared/data/cifar10 threads=1   # DDP; rank 0 probes
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from _common import command_line, environment, read_results, utc_now
from _ssl_report import write_report

from edgessl.data.cache import load_split
from edgessl.data.readers import ImageArrays
from edgessl.eval.features import load_encoder
from edgessl.eval.finetune import evaluate, train_classifier
from edgessl.eval.probe import ProbeResult, probe_with
from edgessl.models import create_encoder
from edgessl.models.tinynext import OUTPUT_STAGES
from edgessl.recipe import Recipe, load_recipe, recipe_from_dict
from edgessl.train.distributed import launch_context
from edgessl.train.pretrain import PretrainResult, pretrain

PUBLISHED = {"cifar10": 60.01, "tinyimagenet": 11.23}


def dataset_key(data: str) -> str:
    return "tinyimagenet" if "tiny" in Path(data).name.lower() else "cifar10"


def run(args: argparse.Namespace, previous: dict) -> dict | None:
    key = dataset_key(args.data)
    recipe_path = args.recipe or Path(f"recipes/{key}.yaml")
    overrides = [f"data.path={args.data}", f"seed={args.seed}", *args.overrides]
    if args.epochs is not None:
        overrides.append(f"optim.epochs={args.epochs}")
    recipe = load_recipe(recipe_path, overrides)
    result = pretrain(recipe, Path(args.runs) / f"ssl_protocol_{args.name or key}", resume=args.resume)
    if not launch_context().is_main:
        return None  # under torchrun rank 0 alone probes and writes the results
    curve, curve_seconds = read_probe_curve(result.out_dir / "probe_curve.csv")
    train = load_split(args.data, "train", recipe.data.image_size)
    test = load_split(args.data, recipe.data.test_split, recipe.data.image_size)
    probe = probe_encoder(load_encoder(result.encoder_path)[0], recipe, train, test, args.seed)
    print(probe.protocol(), f"-> {probe.top1:.2f} %", flush=True)
    torch.manual_seed(args.seed)
    random_probe = probe_encoder(create_encoder(recipe.encoder, recipe.data.image_size), recipe, train, test, args.seed)
    print(f"random-init probe: {random_probe.top1:.2f} %", flush=True)
    rows = {
        "published": {"top1": PUBLISHED[key], "how": "published reference for the method (linear probe, 20 % labels)"},
        "edgessl_ssl_probe": {"top1": probe.top1} | budget_row(recipe, recipe_path, result, curve_seconds) | held_out(probe),
        "random_init_probe": {"top1": random_probe.top1, "how": "measured: same probe on an untrained encoder"} | held_out(random_probe),
    }
    if args.supervised_epochs > 0:
        rows["supervised_scratch"] = supervised_row(recipe, train, test, args.supervised_epochs, args.seed)
    elif "supervised_scratch" in previous.get("rows", {}):
        rows["supervised_scratch"] = previous["rows"]["supervised_scratch"]  # kept: same labels and seed, earlier run
    return {
        "dataset": key,
        "data": args.data,
        "rows": rows,
        "probe_protocol": probe.protocol(),
        "label_fraction": recipe.probe.label_fraction,
        "seed": args.seed,
        "recipe": recipe.to_dict(),
        "pretrain_cpu_hours": round(result.run_seconds / 3600, 3),
        "environment": environment(),
        "command": command_line(),
        "scheduler_final": json.loads(result.out_dir.joinpath("scheduler.json").read_text())[-1],
        "probe_curve": curve if recipe.probe.monitor_every > 0 else [],
    } | ({"provenance": previous["provenance"]} if args.resume and "provenance" in previous else {})  # hand-written; a resume keeps it


def probe_encoder(encoder: torch.nn.Module, recipe: Recipe, train: ImageArrays, test: ImageArrays, seed: int) -> ProbeResult:
    """The recipe's linear probe; features are extracted where the encoder trained, the head fits on the host."""
    # stages=OUTPUT_STAGES: the protocol the issue names reads the encoder's output, even where a recipe probes more
    return probe_with(encoder, train, test, recipe.probe, recipe.device, seed=seed, stages=OUTPUT_STAGES)[0]


def budget_row(recipe: Recipe, recipe_path: Path, result: PretrainResult, curve_seconds: float) -> dict:
    """How the encoder was trained: the budget that #5 wants beside every accuracy, so budgets are never mixed."""
    o = recipe.optim
    return (
        {
            "how": "measured: edgessl pretrain + linear probe",
            "recipe": str(recipe_path),
            "pretrain_epochs": round(result.epochs, 2) if result.stopped_by_time else o.epochs,
            "schedule_epochs": round(result.epochs, 2) if o.schedule_by_time else max(o.epochs, o.schedule_epochs),
            "pretrain_steps": result.steps,
            "pretrain_wall_s": round(result.run_seconds, 1),  # all resumed segments, without mid-run probes
            "probe_monitor_s": curve_seconds,
        }
        | ({"stopped_by_max_minutes": o.max_minutes} if result.stopped_by_time else {})
        | ({"cosine_over_minutes": o.max_minutes} if o.schedule_by_time else {})
        | ({"segments": result.segments} if len(result.segments) > 1 else {})
    )


def held_out(probe: ProbeResult) -> dict:
    """The probe's weight-decay candidates and their held-out top-1, when it chose between any (probe.weight_decays)."""
    return {"probe_weight_decay": probe.weight_decay, "probe_held_out_top1": probe.held_out_top1} if probe.held_out_top1 else {}


def supervised_row(recipe: Recipe, train: ImageArrays, test: ImageArrays, epochs: int, seed: int) -> dict:
    """Supervised training from scratch on the probe's labelled subset: what the pretraining has to beat."""
    t1 = time.perf_counter()
    top1 = evaluate(train_classifier(create_encoder(recipe.encoder, recipe.data.image_size), train, recipe.probe.label_fraction, epochs, seed), test)
    print(f"supervised from scratch: {top1:.2f} %", flush=True)
    return {
        "top1": top1,
        "how": f"measured: full training from scratch on the same labels, crop + flip, SGD one-cycle, {epochs} epochs",
        "epochs": epochs,
        "wall_s": round(time.perf_counter() - t1, 1),
        "date": utc_now(),
    }


def rerun_supervised(args: argparse.Namespace, name: str) -> None:
    """--supervised-only: re-measure one section's supervised_scratch row and keep its other rows."""
    sections = read_results("ssl_protocol").get("datasets", {})
    if name not in sections:
        raise SystemExit(f"--supervised-only: no section {name!r} in ssl_protocol.json; known: {', '.join(sections)}")
    recipe = recipe_from_dict(sections[name]["recipe"])
    train = load_split(args.data, "train", recipe.data.image_size)
    test = load_split(args.data, recipe.data.test_split, recipe.data.image_size)
    row = supervised_row(recipe, train, test, args.supervised_epochs, args.seed) | {"command": command_line()}
    sections = read_results("ssl_protocol").get("datasets", {})  # re-read: a run may have finished meanwhile
    sections[name]["rows"]["supervised_scratch"] = row
    write_report(sections)


def read_probe_curve(path: Path) -> tuple[list[dict], float]:
    """The mid-run probes of the whole run (every resumed segment's; the pretrain result times only the last
    segment's): epoch and top-1 of each, and their seconds summed."""
    if not path.is_file():
        return [], 0.0
    with path.open() as f:
        rows = list(csv.DictReader(f))
    return [{"epoch": int(r["epoch"]), "top1": float(r["top1"])} for r in rows], round(sum(float(r["seconds"]) for r in rows), 1)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", help="data set to pretrain and probe on (required unless --refresh-summary)")
    p.add_argument("--refresh-summary", action="store_true", help="rebuild summary and table from stored rows (e.g. after label_efficiency.py)")
    p.add_argument("--recipe", type=Path)
    p.add_argument("--epochs", type=int)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--supervised-epochs", type=int, default=30, help="0 keeps the supervised row of an earlier run")
    p.add_argument("--supervised-only", action="store_true", help="re-measure only the supervised-from-scratch row of the section (--name)")
    p.add_argument("--runs", default="runs")
    p.add_argument("--resume", action="store_true", help="continue the run in <runs>/ssl_protocol_<name> from its last.pt")
    p.add_argument("--name", help="results section (default: the data set); give longer budgets their own, e.g. cifar10_24ep")
    p.add_argument("overrides", nargs="*", help="recipe overrides key=value")
    args = p.parse_args()
    if args.refresh_summary:
        sections = read_results("ssl_protocol").get("datasets", {})
        write_report(sections)
        return
    if args.data is None:
        p.error("--data is required")
    name = args.name or dataset_key(args.data)
    if args.supervised_only:
        rerun_supervised(args, name)
        return
    previous = read_results("ssl_protocol").get("datasets", {}).get(name, {})
    section = run(args, previous)
    if section is None:
        return
    sections = read_results("ssl_protocol").get("datasets", {})  # re-read: another data set may have finished meanwhile
    sections[name] = section
    write_report(sections)


if __name__ == "__main__":
    main()
