"""Which pooled features the linear probe should read: the encoder's output (stage4, the published
protocol) or the pooled outputs of several stages concatenated, on several pretrained encoders; with
`--augment-copies 0 3` also with the head trained on augmented copies of the labelled images.

    python benchmarks/probe_stages.py --encoder runs/ssl_protocol_cifar10/encoder.pt --encoder runs/ssl_protocol_tinyimagenet/encoder.pt \
        --stages stage4 stage3,stage4 stage2,stage3,stage4 [--augment-copies 0 3 --output probe_stages_aug]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _common import command_line, environment, host_text, write_results

from edgessl.data.cache import load_split
from edgessl.eval.features import load_encoder
from edgessl.eval.probe import probe_with
from edgessl.models.tinynext import OUTPUT_STAGES as BASELINE
from edgessl.models.tinynext import parse_stages
from edgessl.recipe import recipe_from_dict

BASE = "+".join(BASELINE)


def variant_name(stages: tuple[str, ...], copies: int) -> str:
    return "+".join(stages) + (f" + {copies} aug" if copies else "")


def gains_over_baseline(rows: list[dict], names: list[str]) -> tuple[dict, list[str]]:
    """Each variant's top-1 less the baseline's on the same encoder: the summary (mean and least gain per variant)
    and one Markdown sentence per variant. Empty when the baseline was not measured."""
    gains = {n: [r["top1"][n] - r["top1"][BASE] for r in rows] for n in names if n != BASE and BASE in names}
    lines = []
    for name, g in gains.items():
        spread = f"{g[0]:+.2f} points on 1 encoder" if len(g) == 1 else f"{min(g):+.2f} to {max(g):+.2f} points over {len(g)} encoders (mean {sum(g) / len(g):+.2f})"
        lines += ["", f"`{name}` against `{BASE}`: {spread}."]
    key = {n: n.replace(" + ", "_").replace(" ", "_").replace("+", "_") for n in gains}
    summary = {f"mean_gain_points_{key[n]}": round(sum(g) / len(g), 2) for n, g in gains.items()}
    summary |= {f"min_gain_points_{key[n]}": round(min(g), 2) for n, g in gains.items()}
    return summary | {"encoders": len(rows)}, lines


def measure(encoder_path: Path, variants: list[tuple[tuple[str, ...], int]]) -> dict:
    """One row per encoder: the probe's top-1 for each (stage set, augmented copies), on the data and probe settings it was pretrained with."""
    encoder, payload = load_encoder(encoder_path)
    recipe = payload["recipe"]
    config = recipe_from_dict(recipe)  # stored recipes lack keys added since
    data, probe = config.data.path, config.probe
    train = load_split(data, "train", payload["image_size"])
    test = load_split(data, config.data.test_split, payload["image_size"])
    top1 = {}
    for stages, copies in variants:
        result, _, _ = probe_with(encoder, train, test, probe, stages=stages, augment_copies=copies)
        top1[variant_name(stages, copies)] = round(result.top1, 2)
        print(f"{encoder_path}: {result.protocol()} -> {result.top1:.2f} %", flush=True)
    return {"encoder": str(encoder_path), "data": data, "label_fraction": probe.label_fraction, "top1": top1}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--encoder", type=Path, action="append", required=True, help="encoder.pt (repeat for several)")
    p.add_argument("--stages", nargs="+", default=["stage4", "stage3,stage4"], help="stage sets, e.g. stage4 stage3,stage4")
    p.add_argument("--augment-copies", type=int, nargs="+", default=[0], help="augmented copies of each labelled image (probe.augment_copies), e.g. 0 3")
    p.add_argument("--output", default="probe_stages", help="results name under benchmarks/results/")
    args = p.parse_args()
    if min(args.augment_copies) < 0:
        p.error("--augment-copies must be 0 or more")
    try:
        args.stages = [parse_stages(text) for text in args.stages]
    except ValueError as err:
        p.error(str(err))
    t0 = time.perf_counter()
    variants = [(stages, copies) for copies in args.augment_copies for stages in args.stages]
    rows = [measure(path, variants) for path in args.encoder]
    names = [variant_name(*v) for v in variants]
    env = environment()
    md = ["# Linear probe: which stages' pooled features", "", f"Reproduce: `{command_line()}`", "",
          f"Each encoder probed on the data, label fraction, epochs and seed it was pretrained with (its recipe); features standardised "
          f"with train-subset mean/std; {host_text(env)}, torch {env['torch']}, {(time.perf_counter() - t0) / 60:.0f} min, {env['date']}. "
          f"`{BASE}` is the encoder's output, the published protocol and the one every other table reports; `+ N aug`: the head also trains on N "
          f"augmented copies of each labelled image (mirror, then random shifts; `probe.augment_copies`).", "",
          "| encoder | data | " + " | ".join(f"{n} top-1 %" for n in names) + " |", "|---|---|" + "---|" * len(names)]  # fmt: skip
    for r in rows:
        md.append(f"| `{r['encoder']}` | {Path(r['data']).name} | " + " | ".join(f"{r['top1'][n]:.2f}" for n in names) + " |")
    summary, gain_lines = gains_over_baseline(rows, names)
    md += gain_lines
    write_results(args.output, {"summary": summary, "rows": rows, "environment": env, "command": command_line()}, "\n".join(md) + "\n")


if __name__ == "__main__":
    main()
