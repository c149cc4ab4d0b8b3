"""Human tables (rich) for budget and bench reports; JSON comes from their to_dict()."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from edgessl.targets.bench import BenchReport
from edgessl.targets.budget import BudgetReport


def _kib(n: int) -> str:
    return f"{n / 1024:,.1f} KiB"


def print_budget(report: BudgetReport, console: Console, layers: int = 0) -> None:
    if layers:
        t = Table(title=f"per-layer ({len(report.layers)} ops; showing the {layers} with most live activations)")
        for col in ("#", "op", "output", "weights", "live activations", "MACs"):
            t.add_column(col, justify="right")
        for row in sorted(report.layers, key=lambda r: -r["live_activation_bytes"])[:layers]:
            t.add_row(str(row["index"]), row["op"], "x".join(map(str, row["output_shape"])), f"{row['weight_bytes']:,}", f"{row['live_activation_bytes']:,}", f"{row['macs']:,}")
        console.print(t)
    for title, lines, total, limit in (
        ("flash", report.flash_lines, report.flash_total, report.flash_limit),
        ("SRAM", report.sram_lines, report.sram_total, report.sram_limit),
    ):
        t = Table(title=f"{title} on {report.board} ({report.family})")
        t.add_column("item")
        t.add_column("bytes", justify="right")
        t.add_column("how obtained")
        for line in lines:
            t.add_row(line.item, f"{line.bytes:,}", line.how)
        status = "fits" if total <= limit else "DOES NOT FIT"
        t.add_row(f"total vs limit {_kib(limit)}", f"{total:,}", f"{status}: margin {_kib(limit - total)} ({(limit - total) / limit:+.0%})")
        console.print(t)
    console.print(report.arena_explanation())


def print_bench(report: BenchReport, console: Console) -> None:
    t = Table(title="host latency, batch 1 (measured)")
    for col in ("runtime", "median ms", "p90 ms", "runs", "version"):
        t.add_column(col, justify="right")
    for h in report.host:
        t.add_row(h.runtime, f"{h.median_ms:.2f}", f"{h.p90_ms:.2f}", str(h.runs), h.version)
    console.print(t)
    for name, why in report.not_timed.items():
        console.print(f"not timed: {name} ({why})")
    b = report.board
    console.print(f"target {b.name} ({b.family} @ {b.clock_mhz:g} MHz): {report.estimated_ms:.1f} ms per inference (estimated: analytic per-layer model)")
