"""ablation.py --resume keeps earlier rows only under the same protocol, recipe content included."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pytest

from edgessl.recipe import load_recipe

REPO = Path(__file__).parents[2]
sys.path.insert(0, str(REPO / "benchmarks"))
import _common  # noqa: E402  (a script folder, not a package)
import ablation  # noqa: E402


def sweep_args() -> argparse.Namespace:
    return argparse.Namespace(output="sweep", train_limit=0, extra=[], epochs=3, recipe=REPO / "recipes/cifar10.yaml")


def write_sweep(args: argparse.Namespace, recipe_overrides: list[str]) -> None:
    recipe = load_recipe(args.recipe, recipe_overrides)
    row = {"variant": ablation.BASELINE, "overrides": [], "top1": 50.0, "epochs": 3, "pretrain_wall_s": 1.0, "run": "r"}
    summary = {"device": _common.device_name(), "train_images": 100}
    payload = {"summary": summary, "rows": [row], "recipe": str(args.recipe), "recipe_settings": recipe.to_dict(), "extra": []}
    _common.write_results(args.output, payload, "")


@pytest.mark.parametrize(("stored_overrides", "kept"), [([], 1), (["loss.lambda_dis=0"], 0)])
def test_resume_keeps_rows_only_of_the_same_recipe_content(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, stored_overrides: list[str], kept: int) -> None:
    monkeypatch.setattr(_common, "RESULTS", tmp_path)
    args = sweep_args()
    write_sweep(args, stored_overrides)
    rows = ablation.earlier_rows(args, load_recipe(args.recipe, []), [ablation.BASELINE], train_images=100)
    assert len(rows) == kept


def test_rows_from_several_days_are_flagged_and_one_day_is_not() -> None:
    rows = [{"date": "2026-11-29 20:56 UTC"}, {"date": "2026-11-30 01:10 UTC"}]
    assert "2 days (2026-11-29, 2026-11-30)" in ablation.day_note(rows)
    assert ablation.day_note(rows[:1]) == ""
