"""The schedule trend that ssl_protocol.py reports: which runs it fits and how it names them."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pytest

from edgessl.recipe import load_recipe

REPO = Path(__file__).parents[2]
sys.path.insert(0, str(REPO / "benchmarks"))
import _common  # noqa: E402  (a script folder, not a package)
import _ssl_report as ssl_report  # noqa: E402
import ssl_protocol  # noqa: E402


def section(top1: float, epochs: int, *overrides: str) -> dict:
    recipe = load_recipe(REPO / "recipes/cifar10.yaml", [f"optim.epochs={epochs}", "optim.schedule_epochs=0", *overrides])
    probe = {"top1": top1, "pretrain_epochs": epochs, "pretrain_wall_s": 480.0 * epochs}
    rows = {"published": {"top1": 60.01}, "edgessl_ssl_probe": probe, "random_init_probe": {"top1": 38.0}}
    env = {"device": "cpu", "cpu_threads": 2}
    return {"dataset": "cifar10", "recipe": recipe.to_dict(), "environment": env, "rows": rows, "pretrain_cpu_hours": epochs * 480.0 / 3600}


def test_trend_fits_the_default_recipe_series() -> None:
    default = section(63.0, 14)
    trend = ssl_report.schedule_trend(default, [default, section(60.0, 7), section(70.0, 28, "loss.lambda_dis=0.5")])
    assert trend is not None
    assert [p["epochs"] for p in trend["points"]] == [7, 14]  # the other recipe's run is not a point
    assert trend["points_per_doubling"] == pytest.approx(3.0)
    assert trend["basis"] == []


def test_trend_falls_back_to_another_recipe_and_names_how_it_differs() -> None:
    default = section(66.0, 14, "loss.lambda_dis=0.5")
    series = [section(60.0, 7, "loss.lambda_dis=0.25"), section(63.0, 14, "loss.lambda_dis=0.25")]
    trend = ssl_report.schedule_trend(default, [default, *series])
    assert trend is not None
    assert trend["points_per_doubling"] == pytest.approx(3.0)
    assert trend["basis"] == ["loss.lambda_dis=0.25"]
    summary = ssl_report.summary({"cifar10": default, "cifar10_7ep": series[0], "cifar10_14ep": series[1]})
    assert summary["cifar10_trend_recipe"] == "the default with loss.lambda_dis=0.25"


def test_no_trend_without_two_lengths_of_one_recipe() -> None:
    default = section(66.0, 14)
    assert ssl_report.schedule_trend(default, [default, section(60.0, 7, "loss.lambda_dis=0.5")]) is None


def test_a_run_stopped_by_its_time_budget_is_no_trend_point_and_says_so() -> None:
    default = section(63.0, 14)
    stopped = section(62.0, 28, "optim.max_minutes=100")
    stopped["rows"]["edgessl_ssl_probe"] |= {"pretrain_epochs": 12.5, "schedule_epochs": 28, "stopped_by_max_minutes": 100.0}
    assert ssl_report.schedule_trend(default, [default, section(60.0, 7), stopped])["points"][-1]["epochs"] == 14
    text = ssl_report.budget_text(stopped["rows"]["edgessl_ssl_probe"], stopped["environment"])
    assert text.startswith("12.5 epochs of a 28-epoch schedule (stopped by its 100-min budget)")


def test_a_run_resumed_with_a_longer_schedule_is_no_trend_point_and_says_so() -> None:
    default = section(63.0, 14)
    lengthened = section(66.0, 28)
    changes = {"optim.epochs": [14, 28], "optim.max_minutes": [100, 200]}
    segments = [{"from_step": 0, "from_epoch": 0, "recipe_changes": {}}, {"from_step": 5460, "from_epoch": 14, "recipe_changes": changes}]
    lengthened["rows"]["edgessl_ssl_probe"]["segments"] = segments
    assert ssl_report.schedule_trend(default, [default, section(60.0, 7), lengthened])["points"][-1]["epochs"] == 14
    text = ssl_report.budget_text(lengthened["rows"]["edgessl_ssl_probe"], lengthened["environment"])
    assert text.endswith("; resumed at epoch 14 with optim.epochs 14 -> 28")  # the new time budget is not repeated


def test_supervised_only_names_the_known_sections_when_asked_for_another(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_common, "RESULTS", tmp_path)
    _common.write_results("ssl_protocol", {"datasets": {"cifar10": section(63.0, 14)}}, "")
    args = argparse.Namespace(data="unused", supervised_epochs=1, seed=0)
    with pytest.raises(SystemExit, match="no section 'cifar10_x'.*known: cifar10"):
        ssl_protocol.rerun_supervised(args, "cifar10_x")


def test_a_resumed_run_keeps_the_hand_written_provenance_of_its_section(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_common, "RESULTS", tmp_path / "results")
    old = section(63.0, 14) | {"provenance": "trained in two segments"}
    _common.write_results("ssl_protocol", {"datasets": {"smoke": old}}, "")
    argv = ["ssl_protocol.py", "--data", "synthetic", "--recipe", str(REPO / "recipes/smoke.yaml"), "--supervised-epochs", "0"]
    argv += ["--runs", str(tmp_path / "runs"), "--name", "smoke", "--resume", "optim.epochs=1", "probe.epochs=2"]
    monkeypatch.setattr(sys, "argv", argv)
    ssl_protocol.main()
    new = _common.read_results("ssl_protocol")["datasets"]["smoke"]
    assert new["provenance"] == "trained in two segments"
    assert new["rows"]["edgessl_ssl_probe"]["pretrain_epochs"] == 1  # the rows are the new run's


def test_a_resumed_run_counts_every_segments_probe_time_and_reports_the_chosen_weight_decay(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_common, "RESULTS", tmp_path / "results")
    argv = ["ssl_protocol.py", "--data", "synthetic", "--recipe", str(REPO / "recipes/smoke.yaml"), "--supervised-epochs", "0"]
    argv += ["--runs", str(tmp_path / "runs"), "--name", "smoke", "--resume", "probe.epochs=2", "probe.monitor_every=1", "probe.weight_decays=0.0005,0.2"]
    seconds = []
    for epochs in (1, 2):
        monkeypatch.setattr(sys, "argv", [*argv, f"optim.epochs={epochs}"])
        ssl_protocol.main()
        rows = _common.read_results("ssl_protocol")["datasets"]["smoke"]["rows"]
        seconds.append(rows["edgessl_ssl_probe"]["probe_monitor_s"])
    curve = (tmp_path / "runs/ssl_protocol_smoke/probe_curve.csv").read_text().splitlines()
    assert len(curve) == 3 and 0 < seconds[0] < seconds[1]  # the second segment's probe added to the first's
    for row in (rows["edgessl_ssl_probe"], rows["random_init_probe"]):
        assert set(row["probe_held_out_top1"]) == {"0.0005", "0.2"} and row["probe_weight_decay"] in (0.0005, 0.2)


def test_summary_headline_is_the_best_budget_and_keeps_the_default() -> None:
    default, longer = section(63.0, 14), section(70.0, 28)
    longer["environment"] |= {"date": "2026-12-02"}
    summary = ssl_report.summary({"cifar10": default, "cifar10_28ep": longer})
    assert summary["cifar10_linear_probe_top1"] == summary["cifar10_linear_probe_top1_best"] == 70.0
    assert summary["cifar10_linear_probe_top1_default"] == 63.0
    assert summary["cifar10_best_budget"].startswith("28 epochs")


def test_a_run_whose_cosine_spans_its_time_budget_is_a_complete_trend_point_and_says_so() -> None:
    default = section(63.0, 14)
    timed = section(66.0, 400, "optim.max_minutes=118", "optim.schedule_by_time=true")
    timed["rows"]["edgessl_ssl_probe"] |= {"pretrain_epochs": 21.3, "schedule_epochs": 21.3, "stopped_by_max_minutes": 118.0, "cosine_over_minutes": 118.0}
    trend = ssl_report.schedule_trend(default, [default, section(60.0, 7), timed])
    assert [p["epochs"] for p in trend["points"]] == [7, 14, 21]
    text = ssl_report.budget_text(timed["rows"]["edgessl_ssl_probe"], timed["environment"])
    assert text.startswith("21.3 epochs of a cosine laid over its 118-min budget, ")


def test_summary_reports_the_best_gpu_run_apart_with_its_budget() -> None:
    cpu = section(69.0, 24)
    gpus = [section(65.5, 41, "device=cuda"), section(64.2, 63, "device=cuda")]
    for gpu in gpus:
        gpu["environment"] = {"device": "NVIDIA H200", "cpu_threads": 4}
    summary = ssl_report.summary({"cifar10": cpu, "cifar10_gpu_a": gpus[0], "cifar10_gpu_b": gpus[1]})
    assert summary["cifar10_linear_probe_top1_gpu"] == 65.5 and summary["cifar10_linear_probe_top1_best"] == 69.0
    assert summary["cifar10_gpu_budget"].startswith("41 epochs, ") and summary["cifar10_gpu_budget"].endswith("on NVIDIA H200")


def test_summary_lists_the_repeats_of_the_best_two_hour_recipe_beside_it() -> None:
    best, repeat = section(63.0, 14), section(62.0, 14, "probe.monitor_every=5")  # probe cadence changes no weights
    others = {
        "cifar10_dis": section(60.0, 14, "loss.lambda_dis=0.5"),
        "cifar10_cut": section(61.0, 14, "optim.schedule_epochs=28"),  # another schedule is no repeat
        "cifar10_28ep": section(70.0, 28),  # over 2 CPU-hours
    }
    summary = ssl_report.summary({"cifar10": best, "cifar10_r2": repeat, **others})
    assert summary["cifar10_linear_probe_top1_cpu2h"] == 63.0
    assert summary["cifar10_cpu2h_repeats_top1"] == [63.0, 62.0]
    assert summary["cifar10_cpu2h_repeats_mean_top1"] == 62.5
    alone = ssl_report.summary({"cifar10": best, **others})
    assert "cifar10_cpu2h_repeats_top1" not in alone
    assert ssl_report.repeats_markdown({"cifar10": best, "cifar10_r2": repeat, **others})[2].startswith("The same recipe")
    assert "cifar10: 63.00 %, cifar10_r2: 62.00 %; mean 62.50 %" in ssl_report.repeats_markdown({"cifar10": best, "cifar10_r2": repeat})[2]
    assert ssl_report.repeats_markdown({"cifar10": best, **others}) == []


def test_a_complete_run_as_long_as_the_prediction_measures_it_and_the_report_says_whether_it_held() -> None:
    default, short = section(63.0, 14), section(60.0, 7)  # 3 points per doubling: 80 % predicted near 711 epochs
    long_run = section(70.0, 800, "loss.lambda_dis=0.5")  # another recipe, so no point of the fit
    sections = {"cifar10": default, "cifar10_7ep": short, "cifar10_800ep": long_run}
    summary = ssl_report.summary(sections)
    assert summary["cifar10_predicted_epochs_for_80"] == pytest.approx(711, abs=1)
    assert summary["cifar10_trend_check_top1"] == 70.0 and summary["cifar10_trend_check_reached_80"] is False
    assert summary["cifar10_trend_check_budget"].startswith("800 epochs")
    check = ssl_report.trend_markdown(sections)[-2]
    assert "`loss.lambda_dis=0.5`" in check and "failed by 10.00 points" in check
    shorter = sections | {"cifar10_800ep": section(70.0, 28, "loss.lambda_dis=0.5")}
    assert "cifar10_trend_check_top1" not in ssl_report.summary(shorter)


def test_the_measured_check_refits_a_curve_that_can_level_off_and_says_where() -> None:
    curve = {epochs: round(76.0 - 100.0 / epochs, 2) for epochs in (7, 14, 28, 2000)}  # levels off at 76 %
    sections = {"cifar10": section(curve[14], 14), "cifar10_7ep": section(curve[7], 7), "cifar10_28ep": section(curve[28], 28),
                "cifar10_2000ep": section(curve[2000], 2000, "loss.lambda_dis=0.5")}  # fmt: skip
    summary = ssl_report.summary(sections)
    assert summary["cifar10_trend_check_reached_80"] is False
    assert summary["cifar10_trend_refit_asymptote_top1"] == pytest.approx(76.0, abs=0.05)
    assert summary["cifar10_trend_refit_epochs_for_80"] is None
    refit = ssl_report.trend_markdown(sections)[-2]
    assert "levels off at 76.0" in refit and "no schedule length that reaches 80 %" in refit and "mixes two recipes" in refit
    assert ssl_report._fit_saturating([(7, 61.0), (14, 68.0), (28, 72.0)]) is None  # three parameters need four lengths
