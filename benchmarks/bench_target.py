"""Budget and latency of the int8 probe classifier on a microcontroller family, plus the MLPerf Tiny
ResNet-8 calibration of the latency model.

    python benchmarks/bench_target.py --run runs/ssl_protocol_cifar10 --target cortex-m7
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))
import _common
from _common import command_line, environment, write_results

from edgessl.deploy.classifier import fold_batchnorm
from edgessl.deploy.exporters import read_metadata
from edgessl.deploy.exporters.tflite import calibration_inputs, export_tflite_fp32, quantize_tflite_int8
from edgessl.deploy.tflite_graph import TFLiteGraph
from edgessl.targets.bench import BenchReport, bench, bench_runtimes, plot_layers
from edgessl.targets.budget import BudgetReport, budget
from edgessl.targets.catalogue import load_catalogue, resolve
from edgessl.targets.latency import estimate_latency, total_ms
from edgessl.targets.resnet8 import PUBLISHED_MS, ResNet8


def resnet8_estimates() -> dict[str, float]:
    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as tmp:
        fp32 = export_tflite_fp32(fold_batchnorm(ResNet8().eval()), Path(tmp) / "r8.tflite", 32)
        images = np.random.default_rng(0).integers(0, 256, (32, 32, 32, 3), dtype=np.uint8)
        graph = TFLiteGraph.load(quantize_tflite_int8(fp32, calibration_inputs(images, 32), Path(tmp) / "r8_int8.tflite"))
        return {b: round(total_ms(estimate_latency(graph, resolve(b))), 2) for b in PUBLISHED_MS}


def family_boards(family: str) -> list[str]:
    """Every catalogue board of a CPU family, so that the fit check covers the family the benchmark targets."""
    return sorted(name for name, b in load_catalogue()["boards"].items() if b["family"] == family)


def int8_ranges(tflite: Path) -> str:
    """How the exported model's int8 ranges were chosen, from the metadata the export wrote beside it."""
    meta = read_metadata(tflite)
    return meta.get("int8_ranges", "") if meta is not None else "int8 ranges not recorded."


def fits_by_board(report: BudgetReport, target: str) -> dict[str, dict]:
    """Flash and SRAM of the model on every board of the family, not only the one the latency is estimated on."""
    fits = {}
    for name in family_boards(resolve(target).family):
        on_board = report.against(resolve(target, name))
        fits[name] = {"fits": on_board.fits, "flash_total": on_board.flash_total, "flash_limit": on_board.flash_limit,
                      "sram_total": on_board.sram_total, "sram_limit": on_board.sram_limit}  # fmt: skip
    return fits


def deploy_command(run: Path) -> str:
    """The committed deploy benchmark command that wrote this run's export, so that the reproduce line names it in full."""
    for results in sorted(_common.RESULTS.glob("deploy_*.json"), key=lambda f: json.loads(f.read_text())["environment"]["date"], reverse=True):
        command = json.loads(results.read_text()).get("command", "")
        if f"--run {run} " in f"{command} ":
            return command
    return f"python benchmarks/deploy.py --run {run}"


def summarise(main_budget: BudgetReport, timing: BenchReport, fits: dict[str, dict], r8: dict[str, float]) -> dict:
    return {
        "board": timing.board.name,
        "flash_bytes": main_budget.flash_total,
        "model_bytes": main_budget.flash_lines[0].bytes,
        "tflm_arena_bytes": main_budget.arena["minimum_arena_size"],
        "arena_lower_bound_bytes": main_budget.arena_lower_bound,
        "arena_head_over_lower_bound": round(main_budget.arena["head"] / main_budget.arena_lower_bound, 3),
        "sram_bytes": main_budget.sram_total,
        "estimated_latency_ms": round(timing.estimated_ms, 2),
        **{f"fits_{name}": f["fits"] for name, f in fits.items()},
        "resnet8_estimated_ms_stm32h7a3": r8["stm32h7a3"],
        "resnet8_estimated_ms_stm32f746": r8["stm32f746"],
    }


def markdown(args: argparse.Namespace, main_budget: BudgetReport, timing: BenchReport, fits: dict[str, dict], r8: dict[str, float], ranges: str, env: dict, png: Path) -> str:
    board = timing.board
    fits_lines = ";\n".join(
        f"fits {name}: {f['fits']} (flash {f['flash_total']:,} / {f['flash_limit']:,}, SRAM {f['sram_total']:,} / {f['sram_limit']:,})" for name, f in fits.items()
    )
    timed = [f"| {h.runtime} | {h.median_ms:.2f} | {h.p90_ms:.2f} | {h.version} |" for h in timing.host]
    host = "\n".join(timed + [f"| {name} | not timed: {why} | | |" for name, why in timing.not_timed.items()])
    lines = "\n".join(f"| {ln.item} | {ln.bytes:,} | {ln.how} |" for ln in main_budget.flash_lines + main_budget.sram_lines)
    return f"""# Budget and latency on {args.target} ({board.name} @ {board.clock_mhz:g} MHz)

Reproduce: `{command_line()}` (after `{deploy_command(args.run)}`). {env["date"]}, host {env["cpu"]}, {env["platform"]}.
{ranges}

| item | bytes | how obtained |
|---|---|---|
{lines}

{fits_lines}

{main_budget.arena_explanation()}

| host runtime (measured, batch 1) | median ms | p90 ms | version |
|---|---|---|---|
{host}

Estimated on {board.name}: **{timing.estimated_ms:.1f} ms** per image (analytic per-layer model, see `edgessl/targets/catalogue.yaml`).
Calibration, MLPerf Tiny ResNet-8 exported by edgessl: estimated {r8["stm32h7a3"]} ms on STM32H7A3 (published {PUBLISHED_MS["stm32h7a3"][0]}-{PUBLISHED_MS["stm32h7a3"][1]} ms),
{r8["stm32f746"]} ms on STM32F746 (published {PUBLISHED_MS["stm32f746"][0]}-{PUBLISHED_MS["stm32f746"][1]} ms).

Per-layer chart: `{png.name}`.
"""


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--run", type=Path, required=True, help="run folder holding export/model_int8.tflite (benchmarks/deploy.py)")
    p.add_argument("--target", default="cortex-m7")
    p.add_argument("--runs", type=int, default=50)
    args = p.parse_args()
    tflite = args.run / "export" / "model_int8.tflite"
    board = resolve(args.target)
    main_budget = budget(tflite, board)  # measures the arena once; the other boards of the family reuse it
    fits = fits_by_board(main_budget, args.target)
    runtimes, not_timed = bench_runtimes(tflite, args.run / "classifier.pt")
    timing = bench(tflite, board, runtimes, args.runs, not_timed)
    png = plot_layers(timing, _common.RESULTS / f"bench_{args.target}.png")
    r8 = resnet8_estimates()
    ranges, env = int8_ranges(tflite), environment()
    payload = {"summary": summarise(main_budget, timing, fits, r8), "budget": main_budget.to_dict(), "fits": fits, "bench": timing.to_dict(),
               "resnet8_published_ms": PUBLISHED_MS, "int8_ranges": ranges, "environment": env, "command": command_line()}  # fmt: skip
    write_results(f"bench_{args.target}", payload, markdown(args, main_budget, timing, fits, r8, ranges, env, png))


if __name__ == "__main__":
    main()
