import math
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from edgessl.models import create_encoder
from edgessl.recipe import RecipeError, load_recipe
from edgessl.ssl.dual_corruption import DualCorruptionSSL
from edgessl.ssl.scheduler import DynamicCorruptionScheduler
from edgessl.train.checkpoint import load
from edgessl.train.distributed import DistContext
from edgessl.train.pretrain import Training, lr_at, pretrain

ROOT = Path(__file__).resolve().parents[2]


def _recipe(*extra: str):
    return load_recipe(ROOT / "recipes" / "smoke.yaml", ["optim.batch_size=32", "optim.epochs=2", "checkpoint_every_steps=5", *extra])


def _small(*extra: str):
    """_recipe on 256 of the 512 synthetic images: 8 steps an epoch, half the time, for every training test whose checks
    do not depend on 16 steps an epoch (the time-laid cosine's one-step warmup below does)."""
    return _recipe("data.train_limit=256", *extra)


class Killed(Exception):
    pass


def kill_at(killed_step: int):
    def on_step(step: int) -> None:
        if step == killed_step:
            raise Killed

    return on_step


def test_pretrain_writes_an_encoder_only_checkpoint_and_logs(tmp_path):
    result = pretrain(_small(), tmp_path)
    payload = load(result.encoder_path)
    assert payload["kind"] == "edgessl-encoder" and result.steps == 16
    assert not any(k.startswith(("decoder", "projector", "mask_embedding")) for k in payload["state_dict"])
    assert (tmp_path / "metrics.csv").read_text().count("\n") > 3
    assert (tmp_path / "scheduler.png").is_file() and (tmp_path / "scheduler.json").is_file()


def test_killed_run_resumes_to_the_same_step_count_and_weights(tmp_path):
    recipe = _small("optim.warmup_epochs=1")  # the checkpoint at step 5 lies inside the 8-step warm-up
    full = pretrain(recipe, tmp_path / "full")
    with pytest.raises(Killed):  # mid-epoch, two steps after the last checkpoint
        pretrain(recipe, tmp_path / "killed", on_step=kill_at(7))
    killed_s = load(tmp_path / "killed" / "last.pt")["run_seconds"]
    assert load(tmp_path / "killed" / "last.pt")["step"] == 5 and killed_s > 0
    resumed = pretrain(recipe, tmp_path / "killed", resume=True)
    assert resumed.steps == full.steps
    assert resumed.run_seconds == pytest.approx(killed_s + resumed.wall_seconds)  # the run's time across both segments
    logged = [int(line.split(",")[0]) for line in (tmp_path / "killed" / "metrics.csv").read_text().splitlines()[1:]]
    assert logged == sorted(set(logged))  # rows after the checkpoint are not logged twice
    a, b = load(full.encoder_path)["state_dict"], load(resumed.encoder_path)["state_dict"]
    for key in a:
        torch.testing.assert_close(a[key].float(), b[key].float(), rtol=1e-4, atol=1e-4)


def test_encoder_average_is_exported_and_survives_a_resume(tmp_path):
    ema = ("optim.encoder_ema=0.9",)
    full = pretrain(_small(*ema), tmp_path / "full")
    state = load(tmp_path / "full" / "last.pt")
    exported = load(full.encoder_path)["state_dict"]
    for key, value in exported.items():
        torch.testing.assert_close(value, state["encoder_ema"]["module"][key])
    weight = next(k for k in exported if k.endswith("weight") and exported[k].dim() > 1)
    assert not torch.allclose(exported[weight], state["method"][f"encoder.{weight}"])  # the average, not the last weights
    with pytest.raises(Killed):
        pretrain(_small(*ema), tmp_path / "killed", on_step=kill_at(7))
    resumed = pretrain(_small(*ema), tmp_path / "killed", resume=True)
    for key, value in load(resumed.encoder_path)["state_dict"].items():
        torch.testing.assert_close(value.float(), exported[key].float(), rtol=1e-4, atol=1e-4)


def test_schedule_epochs_cuts_a_longer_schedule_before_its_learning_rate_decays(tmp_path):
    def logged_lr(run: Path) -> list[float]:
        return [float(line.split(",")[2]) for line in (run / "metrics.csv").read_text().splitlines()[1:]]

    pretrain(_small("optim.epochs=1", "optim.schedule_epochs=2", "log_every=1"), tmp_path / "cut")
    pretrain(_small("log_every=1"), tmp_path / "full")
    cut, full = logged_lr(tmp_path / "cut"), logged_lr(tmp_path / "full")
    assert len(cut) == len(full) // 2 and cut == full[: len(cut)]
    assert cut[-1] > 0.4 * max(cut)  # stopped halfway down the cosine, not at its end
    pretrain(_small("optim.schedule_epochs=1", "log_every=1"), tmp_path / "shorter")
    assert logged_lr(tmp_path / "shorter") == full  # a schedule shorter than the run: the run's own


def test_probe_monitor_logs_a_learning_curve_apart_from_training_time(tmp_path):
    result = pretrain(_small("probe.monitor_every=1", "probe.epochs=5"), tmp_path)
    lines = (tmp_path / "probe_curve.csv").read_text().splitlines()
    assert lines[0] == "epoch,step,top1,seconds"
    rows = [line.split(",") for line in lines[1:]]
    assert [(int(r[0]), int(r[1])) for r in rows] == [(1, 8), (2, 16)]
    assert all(0 <= float(r[2]) <= 100 for r in rows)
    assert 0 < result.monitor_seconds < result.wall_seconds
    assert result.run_seconds == pytest.approx(result.wall_seconds - result.monitor_seconds)


def test_probe_monitor_on_unlabelled_data_is_refused(tmp_path):
    folder = tmp_path / "frames"
    folder.mkdir()
    for i in range(4):
        Image.fromarray(np.full((32, 32, 3), i * 40, dtype=np.uint8)).save(folder / f"{i}.png")
    with pytest.raises(ValueError, match="monitor_every=0"):
        pretrain(_recipe(f"data.path={folder}", "probe.monitor_every=1"), tmp_path / "run")


def test_global_size_renders_both_global_views_at_that_size_and_local_crops_as_before():
    recipe = _recipe("augment.global_size=24", "augment.local_crops=2")
    method = DualCorruptionSSL(create_encoder(recipe.encoder, 32), recipe)
    sched = DynamicCorruptionScheduler(recipe.scheduler, recipe.corruption.mask_ratio, recipe.corruption.rot_ratio)
    training = Training(recipe, method, method, torch.optim.AdamW(method.parameters()), sched, DistContext(), horizon=4, warmup=1)
    raw = torch.randint(0, 256, (4, 32, 32, 3), dtype=torch.uint8)
    views = training.views(raw, torch.Generator().manual_seed(0))
    assert [tuple(v.shape) for v in views] == [(4, 3, 24, 24), (4, 3, 24, 24), (8, 3, 16, 16)]
    losses, _, _ = training.step(0, raw)
    assert all(math.isfinite(v) for v in losses.values())


def test_max_minutes_stops_the_run_saves_it_and_a_resume_does_not_train_past_it(tmp_path):
    budget = ("optim.max_minutes=0.02",)  # 1.2 s: over after a few of the 16 steps (6 ms could pass before the first)
    result = pretrain(_small(*budget), tmp_path)
    assert result.stopped_by_time and 1 <= result.steps < 16
    assert result.epochs == pytest.approx(result.steps / 8)
    assert load(tmp_path / "last.pt")["step"] == result.steps and result.encoder_path.is_file()
    again = pretrain(_small(*budget), tmp_path, resume=True)
    assert again.steps == result.steps and again.stopped_by_time
    full = pretrain(_small("optim.max_minutes=60"), tmp_path / "full")
    assert not full.stopped_by_time and full.steps == 16 and full.epochs == 2


def test_a_resume_with_a_changed_recipe_records_what_changed_and_where(tmp_path, capsys):
    pretrain(_small(), tmp_path)
    longer = pretrain(_small("optim.epochs=3"), tmp_path, resume=True)
    assert longer.steps == 24
    assert longer.segments == [
        {"from_step": 0, "from_epoch": 0.0, "recipe_changes": {}},
        {"from_step": 16, "from_epoch": 2.0, "recipe_changes": {"optim.epochs": [2, 3]}},
    ]
    assert "recipe changed on resume: optim.epochs 2 -> 3" in capsys.readouterr().out
    assert load(tmp_path / "last.pt")["segments"][-1]["recipe_changes"] == {"optim.epochs": [2, 3]}


def test_lr_at_lays_the_cosine_over_the_time_budget_when_given_the_share_spent():
    assert lr_at(0, 100, 10, 1.0, time_fraction=0.9) == pytest.approx(0.1)  # warmup goes by steps either way
    assert lr_at(50, 100, 10, 1.0, time_fraction=0.5) == pytest.approx(0.5)
    assert lr_at(50, 100, 10, 1.0, time_fraction=1.2) == 0.0  # past the budget: zero, never negative
    assert lr_at(55, 100, 10, 1.0) == pytest.approx(0.5)  # by steps: halfway between warmup and total


def test_schedule_by_time_anneals_to_zero_when_the_budget_runs_out(tmp_path):
    recipe = _recipe("optim.epochs=1000", "optim.max_minutes=0.1", "optim.schedule_by_time=true", "optim.warmup_epochs=0.1", "log_every=1")
    result = pretrain(recipe, tmp_path)
    assert result.stopped_by_time and result.run_seconds >= 6 and result.steps < 1000 * 16
    lrs = [float(row.split(",")[2]) for row in (tmp_path / "metrics.csv").read_text().splitlines()[1:]]
    after_warmup = lrs[1:]  # the first step is the whole (one-step) warmup
    # the last step starts less than a step's time before the budget ends: well down the cosine even on a loaded machine
    assert after_warmup == sorted(after_warmup, reverse=True) and after_warmup[-1] < 0.25 * lrs[0]


def test_schedule_by_time_without_a_time_budget_is_refused_before_training(tmp_path):
    with pytest.raises(RecipeError, match="optim.max_minutes"):
        pretrain(_recipe("optim.schedule_by_time=true"), tmp_path)
    assert not (tmp_path / "last.pt").exists()
