"""Which corruption site, reconstruction target and extra terms make the encoder learn: one short
pretraining per variant, the same linear probe for each.

    python benchmarks/ablation.py --data ../shared/data/cifar10 --epochs 3
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _common import command_line, device_name, environment, host_text, read_results, utc_now, write_results

from edgessl.data.cache import load_split
from edgessl.eval.features import load_encoder
from edgessl.eval.probe import probe_with
from edgessl.models.tinynext import OUTPUT_STAGES
from edgessl.recipe import Recipe, load_recipe, recipe_from_dict

NOISE_POINTS = 1.5  # seed-to-seed spread of one probe after a short pretraining (FINDINGS: treat < ~1 point as noise)
PAPER = ["loss.view_invariance=0", "augment.local_crops=0"]
BASELINE, SEED_REPEAT = "shipped default", "shipped default, seed 1"
VARIANTS: dict[str, list[str]] = {
    "paper: stage3 site, pixel target": [*PAPER, "corruption.site=stage3", "corruption.target=pixels"],
    "stage3 site, EMA-feature target": [*PAPER, "corruption.site=stage3", "corruption.target=ema"],
    "output site, pixel target": [*PAPER, "corruption.site=output", "corruption.target=pixels"],
    "output site, EMA-feature target (the collapsing prototype)": [*PAPER, "corruption.site=output", "corruption.target=ema"],
    "paper, no scheduler": [*PAPER, "scheduler.enabled=false"],
    "paper, no GRL disentanglement": [*PAPER, "loss.lambda_dis=0"],
    "paper, rot90 patches instead of feature rolls": [*PAPER, "corruption.rotation=rot90", "corruption.num_shifts=3"],
    "view invariance alone (VICReg, no corruption)": ["loss.view_invariance=1", "corruption.enabled=false", "augment.local_crops=0"],
    "paper + VICReg view invariance": ["loss.view_invariance=1", "augment.local_crops=0"],
    "paper + VICReg, no GRL disentanglement": ["loss.view_invariance=1", "augment.local_crops=0", "loss.lambda_dis=0"],
    "paper + VICReg, both views corrupted": ["loss.view_invariance=1", "augment.local_crops=0", "corruption.corrupt_both_views=true"],
    "paper + VICReg + multi-crop (4 x 16 px)": ["loss.view_invariance=1", "augment.local_crops=4"],
    "paper + VICReg + multi-crop, rot90 patches": ["loss.view_invariance=1", "augment.local_crops=4", "corruption.rotation=rot90", "corruption.num_shifts=3"],
    "VICReg + multi-crop, no corruption": ["loss.view_invariance=1", "corruption.enabled=false", "augment.local_crops=4"],
    "paper + VICReg + multi-crop, crops from 8 % area": ["loss.view_invariance=1", "augment.local_crops=4", "augment.crop_min_scale=0.08"],
    "paper + VICReg + multi-crop, hue jitter": ["loss.view_invariance=1", "augment.local_crops=4", "augment.hue=0.1"],
    "paper + VICReg + multi-crop, clean pass for view invariance": ["loss.view_invariance=1", "augment.local_crops=4", "corruption.clean_invariance=true"],
    # the shipped recipe (clean invariance, hue, 2 local crops) and what each of its parts costs or buys
    "shipped default": [],
    "shipped default, no corruption": ["corruption.enabled=false"],
    "shipped default, no local crops": ["augment.local_crops=0"],
    "shipped default, no GRL disentanglement": ["loss.lambda_dis=0"],
    SEED_REPEAT: ["seed=1"],  # the probe keeps seed 0: this row measures the pretraining's seed noise
    "shipped default, 4 local crops": ["augment.local_crops=4"],
    "shipped default, no clean pass (invariance on the corrupted view)": ["corruption.clean_invariance=false"],
    "shipped default, 24-px global views": ["augment.global_size=24"],
    "shipped default, 2048-d projector": ["loss.projector_dim=2048"],
    # lr 0.003 was tried only with the GRL term, which then ran away (README); the 2-hour runs drop that term
    "shipped default, no GRL, lr x2 (0.003)": ["loss.lambda_dis=0", "optim.lr=0.003"],
}


def caveat(top1s: list[float]) -> str:
    """A short ablation can leave every variant under an untrained encoder, or within single-run noise of each
    other; say so instead of crowning a winner."""
    random_init = read_results("ssl_protocol").get("summary", {}).get("cifar10_random_init_probe_top1")
    if random_init is not None and max(top1s) < random_init:
        return f"**Not conclusive:** every variant is below the random-init encoder's probe ({random_init} %): too few steps to rank the variants."
    text = f"Random-init encoder, same probe: {random_init} % (benchmarks/results/ssl_protocol.json)." if random_init else ""
    if len(top1s) > 1 and max(top1s) - min(top1s) < NOISE_POINTS:
        spread = max(top1s) - min(top1s)
        text += f" **Not conclusive:** all variants lie within {spread:.1f} points, inside single-run noise (~{NOISE_POINTS:g} points): this budget cannot rank them."
    return text.strip()


def seed_noise(rows: list[dict]) -> str:
    top1 = {r["variant"]: r["top1"] for r in rows}
    if BASELINE not in top1 or SEED_REPEAT not in top1:
        return ""
    a, b = top1[BASELINE], top1[SEED_REPEAT]
    return f"Pretraining seed noise, measured: the shipped default gives {a:.2f} % with seed 0 and {b:.2f} % with seed 1 ({abs(a - b):.2f} points apart; same probe)."


def day(row: dict) -> str:
    return row.get("date", "not recorded")[:10]


def day_note(rows: list[dict]) -> str:
    days = sorted({day(r) for r in rows})
    if len(days) < 2:
        return ""
    return f"Rows were measured on {len(days)} days ({', '.join(days)}): this machine's speed varies from day to day, so compare pretrain minutes within a day."


def same_recipe(stored: dict | None, recipe: Recipe) -> bool:
    """Whether a results file's stored recipe settings are this recipe's: an edited recipe file is another protocol.
    Read back through the Recipe (as ssl_protocol does), so keys added since take their defaults."""
    return stored is not None and recipe_from_dict(stored).to_dict() == recipe.to_dict()


def earlier_rows(args: argparse.Namespace, recipe: Recipe, names: list[str], train_images: int) -> list[dict]:
    """--resume: the rows an earlier sweep into the same results file measured under the same protocol, so a
    cut-off sweep runs only the variants it is missing."""
    old = read_results(args.output)
    summary = old.get("summary", {})
    protocol = (summary.get("device"), summary.get("train_images"), old.get("extra"))
    if protocol != (device_name(), args.train_limit or train_images, args.extra) or not same_recipe(old.get("recipe_settings"), recipe):
        return []
    return [r for r in old.get("rows", []) if r["variant"] in names and r["epochs"] == args.epochs]


Job = tuple[str, list[str], Path]  # variant name, overrides, run folder


def pretrain_jobs(jobs: list[Job], recipe: Path, common: list[str], parallel: int, on_done: Callable[[Job, float], None]) -> None:
    """Each variant's pretraining as its own `python -m edgessl pretrain` process, `parallel` at a time (on a
    GPU several small runs share the device far better than one); `on_done(job, wall_s)` runs as each ends."""
    env = os.environ | ({"OMP_NUM_THREADS": "1"} if parallel > 1 else {})
    pending, running = list(jobs), {}
    while pending or running:
        while pending and len(running) < parallel:
            job = pending.pop(0)
            job[2].mkdir(parents=True, exist_ok=True)
            cmd = [sys.executable, "-m", "edgessl", "pretrain", "--recipe", str(recipe), "--out", str(job[2]), "--no-probe", *common, *job[1]]
            log = (job[2] / "pretrain.log").open("w")
            running[job[0]] = (job, subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env), log, time.perf_counter())
        time.sleep(1)
        for name, (job, proc, log, t0) in list(running.items()):
            if proc.poll() is None:
                continue
            del running[name]
            log.close()
            if proc.returncode != 0:
                print(f"{name}: pretraining FAILED (rc {proc.returncode}), see {job[2] / 'pretrain.log'}", flush=True)
                continue
            on_done(job, time.perf_counter() - t0)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default="../shared/data/cifar10")
    p.add_argument("--recipe", type=Path, default=Path("recipes/cifar10.yaml"))
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--train-limit", type=int, default=0, help="pretrain each variant on this many images (0: all)")
    p.add_argument("--only", nargs="*", help="variant names to run (default: all)")
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    p.add_argument("--jobs", type=int, default=1, help="pretrainings run at once (use several on a GPU)")
    p.add_argument("--runs", default="runs/ablation")
    p.add_argument("--extra", nargs="*", default=[], help="overrides applied to every variant, e.g. optim.batch_size=256")
    p.add_argument("--output", default="ablation", help="results file stem under benchmarks/results (one per budget and device)")
    p.add_argument("--resume", action="store_true", help="keep the variants this results file already measured with the same protocol")
    args = p.parse_args()
    common = [f"data.path={args.data}", f"optim.epochs={args.epochs}", f"data.train_limit={args.train_limit}", f"device={args.device}", *args.extra]
    unknown = set(args.only or []) - set(VARIANTS)
    if unknown:
        p.error(f"unknown variant(s) {sorted(unknown)}; known: {list(VARIANTS)}")
    chosen = [(name, ov) for name, ov in VARIANTS.items() if not args.only or name in args.only]
    recipe = load_recipe(args.recipe, common)
    train, test = load_split(args.data, "train", recipe.data.image_size), load_split(args.data, "test", recipe.data.image_size)
    rows = earlier_rows(args, recipe, [name for name, _ in chosen], len(train)) if args.resume else []
    done = {r["variant"] for r in rows}
    if done:
        print(f"--resume: keeping {sorted(done)} from benchmarks/results/{args.output}.json", flush=True)
        write_table(args, recipe, rows, len(chosen), len(train))  # the kept rows in this version's layout, at once

    def probe_and_write(job: Job, wall: float) -> None:
        name, overrides, out = job
        encoder, _ = load_encoder(out / "encoder.pt")
        # the published protocol's probe (the encoder's output) with the run's seed, whatever stages the recipe names
        probe, _, _ = probe_with(encoder, train, test, recipe.probe, args.device, seed=recipe.seed, stages=OUTPUT_STAGES)
        row = {"variant": name, "overrides": overrides, "top1": round(probe.top1, 2), "epochs": args.epochs, "pretrain_wall_s": round(wall, 1), "run": str(out)}
        rows.append(row | {"date": utc_now()})  # wall times of rows from other days are another machine state
        rows.sort(key=lambda r: list(VARIANTS).index(r["variant"]))
        print(f"{name}: {probe.top1:.2f} % ({wall / 60:.1f} min)", flush=True)
        write_table(args, recipe, rows, len(chosen), len(train))  # after every variant: a cut-off sweep keeps what it measured

    jobs = [(name, ov, Path(args.runs) / str(i)) for i, (name, ov) in enumerate(chosen) if name not in done]
    pretrain_jobs(jobs, args.recipe, common, args.jobs, probe_and_write)


def write_table(args: argparse.Namespace, recipe: Recipe, rows: list[dict], planned: int, train_images: int) -> None:
    best = max(rows, key=lambda r: r["top1"])
    env = environment()
    concurrency = f", {args.jobs} pretrainings at a time (wall times include that sharing)" if args.jobs > 1 else ""
    extra = f" plus `{' '.join(args.extra)}`" if args.extra else ""
    if recipe.optim.schedule_epochs > args.epochs:
        extra += f" (the first {args.epochs} epochs of its {recipe.optim.schedule_epochs:g}-epoch learning-rate schedule)"
    command = command_line(drop=("--resume",))  # on a clean checkout the sweep runs every variant
    md = ["# Dual-corruption ablation", "", f"Reproduce: `{command}`", "",
          f"Each variant: {args.epochs} epochs of `{args.recipe}` on {args.train_limit or 'all'} training images with the overrides shown{extra}, "
          f"then a linear probe with {recipe.probe.label_fraction:.0%} of the labels; {host_text(env)}{concurrency}, torch {env['torch']}, {env['date']}.", "",
          "| variant | overrides | probe top-1 % | vs shipped default | pretrain min | measured |", "|---|---|---|---|---|---|"]  # fmt: skip
    base = next((r["top1"] for r in rows if r["variant"] == BASELINE), None)
    for r in rows:
        delta = f"{r['top1'] - base:+.2f}" if base is not None else ""
        overrides = f"`{' '.join(r['overrides'])}`" if r["overrides"] else "(as shipped)"
        md.append(f"| {r['variant']} | {overrides} | {r['top1']:.2f} | {delta} | {r['pretrain_wall_s'] / 60:.1f} | {day(r)} |")
    for text in (caveat([r["top1"] for r in rows]), seed_noise(rows), day_note(rows)):
        md += ["", text] if text else []
    if len(rows) < planned:
        md += ["", f"Partial: {len(rows)} of {planned} variants finished."]
    summary = {"best_variant": best["variant"], "best_top1": best["top1"], "epochs": args.epochs, "train_images": args.train_limit or train_images, "device": env["device"]}
    write_results(args.output, {"summary": summary, "rows": rows, "recipe": str(args.recipe), "recipe_settings": recipe.to_dict(), "extra": args.extra,
                                "environment": env, "command": command}, "\n".join(md) + "\n")  # fmt: skip


if __name__ == "__main__":
    main()
