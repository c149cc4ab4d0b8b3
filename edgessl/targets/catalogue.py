"""Target catalogue: CPU families (throughput estimates with sources) and boards (clock, flash, SRAM)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

BUILTIN = Path(__file__).with_name("catalogue.yaml")


class TargetError(ValueError):
    pass


@dataclass(frozen=True)
class Board:
    name: str
    family: str
    clock_mhz: float
    flash: int
    sram: int
    source: str
    macs_per_cycle: dict[str, float]
    cycles_per_element: float
    op_overhead_cycles: float
    family_source: str


def load_catalogue(extra: Path | None = None) -> dict:
    data = yaml.safe_load(BUILTIN.read_text())
    if extra is not None:
        if not Path(extra).is_file():
            raise TargetError(f"catalogue {extra} not found")
        user = yaml.safe_load(Path(extra).read_text()) or {}
        data["families"].update(user.get("families", {}))
        data["boards"].update(user.get("boards", {}))
    return data


def resolve(target: str, board: str | None = None, extra: Path | None = None) -> Board:
    """`target` is a family (its default board) or a board name; `board` picks a board explicitly."""
    cat = load_catalogue(extra)
    families, boards = cat["families"], cat["boards"]
    name = board or (families[target]["default_board"] if target in families else target)
    if name not in boards:
        raise TargetError(f"unknown target {name!r}; families: {', '.join(sorted(families))}; boards: {', '.join(sorted(boards))}")
    b = boards[name]
    if target in families and b["family"] != target:
        raise TargetError(f"board {name} is a {b['family']}, not a {target}")
    fam = families[b["family"]]
    return Board(name, b["family"], float(b["clock_mhz"]), int(b["flash"]), int(b["sram"]), b.get("source", "user catalogue"),
                 dict(fam["macs_per_cycle"]), float(fam["cycles_per_element"]), float(fam["op_overhead_cycles"]), fam.get("source", ""))  # fmt: skip
