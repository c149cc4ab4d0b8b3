"""Cost of one SSL training step against a supervised step of the same encoder and batch, timed
interleaved in one process; and one pretraining epoch's wall time against its compute time.

    python benchmarks/throughput.py --data ../shared/data/cifar10
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).parent))
from _common import command_line, environment, host_text, write_results

from edgessl.models import create_encoder
from edgessl.recipe import load_recipe
from edgessl.ssl.dual_corruption import DualCorruptionSSL
from edgessl.train.pretrain import PretrainResult, pretrain

CL = torch.channels_last


def make_steps(recipe_path: Path, batch: int) -> dict:
    """Each entry: a closure doing forward + backward + optimiser step on a fixed batch."""
    torch.manual_seed(0)
    x = torch.randn(batch, 3, 32, 32).contiguous(memory_format=CL)
    y = torch.randint(0, 10, (batch,))
    encoder = create_encoder("tinynext_t", 32).to(memory_format=CL)
    head = torch.nn.Linear(192, 10)
    sup_opt = torch.optim.AdamW([*encoder.parameters(), *head.parameters()])

    def supervised() -> None:
        loss = F.cross_entropy(head(encoder(x)), y)
        sup_opt.zero_grad()
        loss.backward()
        sup_opt.step()

    steps = {"supervised": supervised}
    for name, vi in (("ssl_dual_corruption", 0.0), ("ssl_default_two_views", 1.0)):
        recipe = load_recipe(recipe_path, [f"loss.view_invariance={vi}"])
        method = DualCorruptionSSL(create_encoder("tinynext_t", 32), recipe).to(memory_format=CL)
        opt = torch.optim.AdamW([p for p in method.parameters() if p.requires_grad])

        def ssl(method: DualCorruptionSSL = method, opt: torch.optim.Optimizer = opt) -> None:
            loss = method.total_loss(method([x, x.flip(-1)], 0.3, 0.2), 1.0, 1.0)
            opt.zero_grad()
            loss.backward()
            opt.step()

        steps[name] = ssl
    return steps


def time_steps(steps: dict, repeats: int) -> dict:
    times: dict[str, list[float]] = {k: [] for k in steps}
    for fn in steps.values():  # warm-up
        fn()
        fn()
    for _ in range(repeats):  # interleaved, so drifts in machine load hit every variant alike
        for name, fn in steps.items():
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
    return {k: statistics.median(v) for k, v in times.items()}


def summary(med: dict[str, float], epoch: PretrainResult) -> dict[str, float]:
    return {
        "ssl_step_over_supervised_step": round(med["ssl_dual_corruption"] / med["supervised"], 3),
        "default_two_view_step_over_supervised_step": round(med["ssl_default_two_views"] / med["supervised"], 3),
        "epoch_wall_over_compute": round(epoch.wall_seconds / epoch.compute_seconds, 3),
        "epoch_wall_s": round(epoch.wall_seconds, 1),
        "epoch_compute_s": round(epoch.compute_seconds, 1),
        "epoch_data_s": round(epoch.data_seconds, 1),
    }


def markdown(args: argparse.Namespace, med: dict[str, float], epoch: PretrainResult, summary: dict[str, float], env: dict) -> str:
    md = [
        "# Training throughput",
        "",
        f"Reproduce: `{command_line()}`",
        "",
        f"Measured on {host_text(env)}, torch {env['torch']}, batch {args.batch}, median of {args.repeats} interleaved repeats, {env['date']}.",
        "",
        "| step | ms / step | img/s | vs supervised |",
        "|---|---|---|---|",
    ]
    md += [f"| {k} | {v * 1000:.0f} | {args.batch / v:.0f} | {v / med['supervised']:.2f}x |" for k, v in med.items()]
    md += [
        "",
        f"One epoch of `{args.epoch_recipe}` ({epoch.steps} steps): wall {epoch.wall_seconds:.0f} s, compute {epoch.compute_seconds:.0f} s, "
        f"data {epoch.data_seconds:.1f} s -> wall / compute = {summary['epoch_wall_over_compute']:.3f}.",
        "",
    ]
    return "\n".join(md)


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default="../shared/data/cifar10")
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--repeats", type=int, default=10)
    p.add_argument("--epoch-recipe", type=Path, default=Path("recipes/dual_corruption_paper.yaml"))
    p.add_argument("--runs", default="runs")
    return p.parse_args()


def main() -> None:
    args = parse_args()
    med = time_steps(make_steps(args.epoch_recipe, args.batch), args.repeats)
    for k, v in med.items():
        print(f"{k:24s} {v * 1000:8.1f} ms/step  {args.batch / v:7.1f} img/s", flush=True)
    recipe = load_recipe(args.epoch_recipe, [f"data.path={args.data}", "optim.epochs=1", f"optim.batch_size={args.batch}", "log_every=50"])
    t0 = time.perf_counter()
    epoch = pretrain(recipe, Path(args.runs) / "throughput_epoch")
    epoch_wall = time.perf_counter() - t0
    env, headline = environment(), summary(med, epoch)
    payload = {
        "summary": headline,
        "step_ms": {k: round(v * 1000, 1) for k, v in med.items()},
        "batch": args.batch,
        "repeats": args.repeats,
        "epoch_recipe": str(args.epoch_recipe),
        "epoch_steps": epoch.steps,
        "epoch_wall_including_setup_s": round(epoch_wall, 1),
        "environment": env,
        "command": command_line(),
        "notes": "step times: median of interleaved repeats, forward + backward + AdamW step, measured. "
        "Epoch: the training loop's wall time (after data load) vs the time inside forward/backward/step; "
        "the rest is batched augmentation and bookkeeping.",
    }
    write_results("throughput", payload, markdown(args, med, epoch, headline, env))


if __name__ == "__main__":
    main()
