"""What benchmarks/ssl_protocol.py reports from its stored sections: the summary of headline numbers, the
schedule trend, the repeats of the best 2-hour recipe and the Markdown tables."""

from __future__ import annotations

import numpy as np
from _common import device_text, host_text, read_results, write_results

from edgessl.recipe import flatten, recipe_from_dict

TREND_TARGET = 80  # % linear-probe top-1 the schedule trend is extrapolated to


def write_report(sections: dict) -> None:
    """benchmarks/results/ssl_protocol.{json,md} from all sections: the summary first, then every section."""
    s = summary(sections)
    write_results("ssl_protocol", {"summary": s, "datasets": sections}, markdown(sections, s))


def summary(sections: dict) -> dict:
    """Headline numbers per data set. `<data>_linear_probe_top1` is the best measured probe (its budget in
    `<data>_best_budget`, also kept as `<data>_linear_probe_top1_best`); `_default` is the section named after
    the data set (the default recipe's budget). Sections with other names (--name) are other budgets of the
    same data set and compete for the headline, cpu2h and best entries; runs on a GPU also give `<data>_linear_probe_top1_gpu`
    and `<data>_gpu_budget`. When the best run within 2 CPU-hours has repeats (the same recipe, budget included),
    `<data>_cpu2h_repeats_top1` lists all of them and `<data>_cpu2h_repeats_mean_top1` is their mean."""
    s: dict = {}
    for key, (sec, budgets) in by_dataset(sections).items():
        s |= _dataset_entries(sections, key, sec, budgets)
    return s | _finetune_entries(s)


def _dataset_entries(sections: dict, key: str, sec: dict, budgets: list[dict]) -> dict:
    rows = sec["rows"]
    best = max(budgets, key=_probe_top1)
    s = {
        f"{key}_linear_probe_top1": _probe_top1(best),
        f"{key}_linear_probe_top1_default": _probe_top1(sec),
        f"{key}_random_init_probe_top1": round(rows["random_init_probe"]["top1"], 2),
        f"{key}_pretrain_cpu_hours_default": sec["pretrain_cpu_hours"],
        f"{key}_published_top1": rows["published"]["top1"],
    }
    if "supervised_scratch" in rows:
        s[f"{key}_supervised_scratch_top1"] = round(rows["supervised_scratch"]["top1"], 2)
    repeats = [top1 for _, top1 in cpu2h_repeats(sections, key)]
    if repeats:
        s[f"{key}_linear_probe_top1_cpu2h"] = repeats[0]
    if len(repeats) > 1:  # the cpu2h entry is the best of these: say how the others of its recipe did
        s[f"{key}_cpu2h_repeats_top1"] = repeats
        s[f"{key}_cpu2h_repeats_mean_top1"] = round(float(np.mean(repeats)), 2)
    on_gpu = [b for b in budgets if b["environment"]["device"] != "cpu"]
    if on_gpu:  # a GPU's budget is minutes, not CPU-hours: its best probe is reported apart
        best_gpu = max(on_gpu, key=_probe_top1)
        s[f"{key}_linear_probe_top1_gpu"] = _probe_top1(best_gpu)
        s[f"{key}_gpu_budget"] = budget_text(best_gpu["rows"]["edgessl_ssl_probe"], best_gpu["environment"])
    s[f"{key}_linear_probe_top1_best"] = _probe_top1(best)
    s[f"{key}_best_budget"] = budget_text(best["rows"]["edgessl_ssl_probe"], best["environment"])
    return s | _trend_entries(key, schedule_trend(sec, budgets))


def _trend_entries(key: str, trend: dict | None) -> dict:
    """The schedule trend's prediction for TREND_TARGET and, once a run measured it, whether it held."""
    if not trend:
        return {}
    s = {
        f"{key}_probe_points_per_doubling": trend["points_per_doubling"],
        f"{key}_predicted_epochs_for_{TREND_TARGET}": trend["epochs_for_target"],
        f"{key}_predicted_cpu_hours_for_{TREND_TARGET}": trend["cpu_hours_for_target"],
    }
    if trend["basis"]:
        s[f"{key}_trend_recipe"] = "the default with " + " ".join(trend["basis"])
    if check := trend["check"]:
        s[f"{key}_trend_check_top1"] = check["top1"]
        s[f"{key}_trend_check_budget"] = check["budget"]
        s[f"{key}_trend_check_reached_{TREND_TARGET}"] = check["reached_target"]
        if refit := check["refit"]:
            s[f"{key}_trend_refit_asymptote_top1"] = refit["asymptote"]
            s[f"{key}_trend_refit_epochs_for_{TREND_TARGET}"] = refit["epochs_for_target"]
    return s


def _finetune_entries(s: dict) -> dict:
    """Fine-tuning and its from-scratch twin from label_efficiency.json: same labels, epochs, augmentation, optimiser."""
    efficiency = read_results("label_efficiency")
    finetune = efficiency.get("summary", {}).get("finetune_top1_0.2")
    if finetune is None:
        return {}
    return {
        "cifar10_finetune_top1": finetune,
        "cifar10_finetune_epochs": efficiency.get("epochs"),
        "cifar10_supervised_scratch_top1": efficiency["summary"].get("supervised_scratch_top1_0.2", s.get("cifar10_supervised_scratch_top1")),
    }


def cpu2h_repeats(sections: dict, dataset: str) -> list[tuple[str, float]]:
    """(section name, top-1) of the data set's best CPU run within 2 CPU-hours and of every repeat of its
    recipe, best first; empty if it has no such run."""
    in_cpu2h = {name: sec for name, sec in sections.items() if sec["dataset"] == dataset and sec["environment"]["device"] == "cpu" and sec["pretrain_cpu_hours"] <= 2.0}
    if not in_cpu2h:
        return []
    best = max(in_cpu2h.values(), key=_probe_top1)
    return sorted(((name, _probe_top1(sec)) for name, sec in in_cpu2h.items() if _same_recipe(sec, best)), key=lambda r: -r[1])


def by_dataset(sections: dict) -> dict[str, tuple[dict, list[dict]]]:
    """data set -> (its default section, all its sections); the default is the section named after the data set."""
    grouped: dict[str, list[dict]] = {}
    for sec in sections.values():
        grouped.setdefault(sec["dataset"], []).append(sec)
    return {key: (sections.get(key, budgets[0]), budgets) for key, budgets in sorted(grouped.items())}


def _recipe_keys(stored: dict, *, length_too: bool) -> dict:
    """A stored run's recipe flattened to dotted keys, without the cadence of mid-run probes and, unless
    length_too, without what only sets its length (or only what is exported)."""
    recipe = recipe_from_dict(stored).to_dict()  # keys added since a run was stored take their defaults
    if not length_too:
        # The encoder average changes only what is exported, and at the end of a complete schedule (lr -> 0)
        # it is close to the last weights: runs with and without it are points of one trend.
        recipe["optim"] |= {"epochs": 0, "schedule_epochs": 0, "max_minutes": 0, "schedule_by_time": False, "encoder_ema": 0}
    recipe["probe"] |= {"monitor_every": 0}
    return flatten(recipe)  # typed by the Recipe: a stored run's lists come back as the tuples of a fresh one


def recipe_difference(run: dict, reference: dict) -> list[str]:
    """The overrides (key=value) that turn the reference run's training into this run's, length aside."""
    mine, theirs = _recipe_keys(run["recipe"], length_too=False), _recipe_keys(reference["recipe"], length_too=False)
    return [f"{k}={v}" for k, v in mine.items() if theirs.get(k) != v]


def _same_recipe(run: dict, other: dict) -> bool:
    """True for repeats: the whole recipe alike, schedule and time budget included (only the cadence of
    mid-run probes may differ, as it changes no weights)."""
    return _recipe_keys(run["recipe"], length_too=True) == _recipe_keys(other["recipe"], length_too=True)


def _complete(section: dict) -> bool:
    """False for a run cut from a longer learning-rate schedule (optim.schedule_epochs > optim.epochs) or
    stopped by its time budget (optim.max_minutes) before its cosine ended; a cosine laid over the time budget
    (optim.schedule_by_time) ends with it."""
    optim = section["recipe"]["optim"]
    row = section["rows"]["edgessl_ssl_probe"]
    if resume_changes(row):
        return False
    if "cosine_over_minutes" in row:
        return True
    return optim.get("schedule_epochs", 0) <= optim["epochs"] and "stopped_by_max_minutes" not in row


def resume_changes(row: dict) -> list[str]:
    """The recipe changes made when the run was resumed, e.g. a lengthened schedule, as text; a new time
    budget (optim.max_minutes) is left out: the budget text says where it stopped."""
    texts = []
    for seg in row.get("segments", []):
        changes = [f"{key} {before} -> {now}" for key, (before, now) in seg["recipe_changes"].items() if key != "optim.max_minutes"]
        texts += [f"resumed at epoch {seg['from_epoch']:g} with {', '.join(changes)}"] if changes else []
    return texts


def schedule_trend(default: dict, budgets: list[dict]) -> dict | None:
    """Estimated, not measured: probe top-1 = a + b ln(epochs), fitted to the endpoints of complete CPU runs
    of one recipe at different lengths (mid-run probes are not endpoints), and the epochs and CPU hours that
    the fit predicts for TREND_TARGET %. The default section's recipe when it has such a series, else the
    first recipe that has one, named in "basis" by how it differs from the default. None if no recipe has.
    "check" is the prediction measured (_trend_check), or None."""
    complete = [b for b in budgets if b["environment"]["device"] == "cpu" and _complete(b)]
    for reference in [default, *budgets]:
        trend = _fit_trend([b for b in complete if not recipe_difference(b, reference)])
        if trend:
            return trend | {"basis": recipe_difference(reference, default), "check": _trend_check(default, complete, trend)}
    return None


def _trend_check(default: dict, complete: list[dict], trend: dict) -> dict | None:
    """Measured test of the trend's prediction: the best of the complete CPU runs at least as long as the epochs
    it predicts for TREND_TARGET %, of any recipe (named by how it differs from the default); None while no
    run is that long."""
    long_enough = [b for b in complete if b["rows"]["edgessl_ssl_probe"]["pretrain_epochs"] >= trend["epochs_for_target"]]
    if not long_enough:
        return None
    run = max(long_enough, key=_probe_top1)
    top1, epochs = _probe_top1(run), run["rows"]["edgessl_ssl_probe"]["pretrain_epochs"]
    return {
        "top1": top1,
        "budget": budget_text(run["rows"]["edgessl_ssl_probe"], run["environment"]),
        "recipe": recipe_difference(run, default),
        "reached_target": top1 >= TREND_TARGET,
        "refit": _fit_saturating([(p["epochs"], p["top1"]) for p in trend["points"]] + [(epochs, top1)]),
    }


def _fit_saturating(points: list[tuple[float, float]]) -> dict | None:
    """Estimated: top-1 = a - b * epochs^-c, least squares over a grid of c, to the trend's points and the check's.
    Unlike a + b ln(epochs) it can level off; "asymptote" is a, "epochs_for_target" None when a <= TREND_TARGET.
    Needs four lengths for its three parameters."""
    epochs, top1 = (np.array(v, dtype=float) for v in zip(*points, strict=True))
    if len(set(epochs)) < 4:
        return None
    fits = []
    for c in np.linspace(0.05, 3.0, 296):
        design = np.stack([np.ones_like(epochs), -(epochs**-c)], axis=1)
        (a, b), *_ = np.linalg.lstsq(design, top1, rcond=None)
        fits.append((float(np.sum((design @ [a, b] - top1) ** 2)), float(c), float(a), float(b)))
    _, c, a, b = min(fits)
    target = (b / (a - TREND_TARGET)) ** (1 / c) if a > TREND_TARGET and b > 0 else None
    return {"asymptote": round(a, 2), "exponent": round(c, 2), "epochs_for_target": round(target) if target else None}


def _fit_trend(runs: list[dict]) -> dict | None:
    rows = [b["rows"]["edgessl_ssl_probe"] for b in runs]
    points = sorted({(r["pretrain_epochs"], round(r["top1"], 2), r["pretrain_wall_s"]) for r in rows})  # a set: one run under two names counts once
    if len({p[0] for p in points}) < 2:
        return None
    epochs, top1, wall = (np.array(v, dtype=float) for v in zip(*points, strict=True))
    slope, intercept = np.polyfit(np.log(epochs), top1, 1)
    target_epochs = float(np.exp((TREND_TARGET - intercept) / slope)) if slope > 0 else float("inf")
    return {
        "points": [{"epochs": int(e), "top1": t, "wall_s": w} for e, t, w in points],
        "points_per_doubling": round(float(slope * np.log(2)), 2),
        "epochs_for_target": round(target_epochs),
        "cpu_hours_for_target": round(target_epochs * float(np.mean(wall / epochs)) / 3600, 1),
    }


def _probe_top1(section: dict) -> float:
    return round(section["rows"]["edgessl_ssl_probe"]["top1"], 2)


def budget_text(row: dict, env: dict) -> str:
    epochs, schedule = row["pretrain_epochs"], row.get("schedule_epochs", row["pretrain_epochs"])
    length = f"{epochs:g} epochs" if schedule == epochs else f"{epochs:g} epochs of a {schedule:g}-epoch schedule"
    if "cosine_over_minutes" in row:
        length = f"{epochs:g} epochs of a cosine laid over its {row['cosine_over_minutes']:g}-min budget"
    elif "stopped_by_max_minutes" in row:
        length += f" (stopped by its {row['stopped_by_max_minutes']:g}-min budget)"
    resumed = "".join(f"; {change}" for change in resume_changes(row))
    return f"{length}, {row['pretrain_wall_s'] / 60:.0f} min pretraining on {device_text(env)}{resumed}"


def markdown(sections: dict, summary: dict) -> str:
    lines = ["# SSL protocol: pretrain, then linear probe with a label fraction", ""]
    for key, sec in sorted(sections.items(), key=lambda kv: (kv[1]["dataset"], kv[0] != kv[1]["dataset"], kv[0])):  # default budget first
        env = sec["environment"]
        lines += [
            f"## {key}",
            "",
            f"Reproduce: `{sec['command']}`" + (f" ({sec['provenance']})" if "provenance" in sec else ""),
            "",
            f"Protocol: seed {sec['seed']}, label fraction {sec['label_fraction']}, {sec['probe_protocol']}; device {host_text(env)}, torch {env['torch']}, {env['date']}.",
            "",
            "| row | top-1 % | budget | how obtained |",
            "|---|---|---|---|",
        ]
        for name, row in sec["rows"].items():
            budget = ""
            if "pretrain_wall_s" in row:
                budget = budget_text(row, env)
            elif "wall_s" in row:
                budget = f"{row['epochs']} epochs, {row['wall_s'] / 60:.0f} CPU-min"
            how = row["how"] + (f"; re-measured {row['date']} by `{row['command']}`" if "command" in row else "")
            lines.append(f"| {name} | {row['top1']:.2f} | {budget} | {how} |")
        lines.append("")
        if sec.get("probe_curve"):
            points = ", ".join(f"epoch {p['epoch']}: {p['top1']:.2f}" for p in sec["probe_curve"])
            lines += [
                f"Linear probe during this run (`probe.monitor_every`; before the learning rate has decayed, so these track "
                f"progress and do not predict what a shorter schedule reaches): {points} %.",
                "",
            ]
        if key == "cifar10" and "cifar10_finetune_top1" in summary:
            lines += [
                f"Full fine-tuning of the pretrained encoder with the same labels: {summary['cifar10_finetune_top1']:.2f} % against "
                f"{summary['cifar10_supervised_scratch_top1']:.2f} % from scratch, {summary['cifar10_finetune_epochs']} epochs each, same "
                "augmentation and optimiser (`label_efficiency.md`, which names its encoder).",
                "",
            ]
    return "\n".join(lines + trend_markdown(sections) + repeats_markdown(sections))


def repeats_markdown(sections: dict) -> list[str]:
    lines = []
    for key in sorted({sec["dataset"] for sec in sections.values()}):
        repeats = cpu2h_repeats(sections, key)
        if len(repeats) > 1:
            runs = ", ".join(f"{name}: {top1:.2f} %" for name, top1 in repeats)
            mean = float(np.mean([top1 for _, top1 in repeats]))
            lines += [
                f"## {key}: repeats of the best recipe within 2 CPU-hours (measured)",
                "",
                f"The same recipe and budget run more than once (the machine's speed differs by day, so each stops at another "
                f"epoch): {runs}; mean {mean:.2f} %. The summary's `{key}_linear_probe_top1_cpu2h` is the best of them.",
                "",
            ]
    return lines


def trend_markdown(sections: dict) -> list[str]:
    lines = []
    for key, (default, budgets) in by_dataset(sections).items():
        trend = schedule_trend(default, budgets)
        if trend is None:
            continue
        points = ", ".join(f"{p['epochs']} epochs: {p['top1']:.2f} % ({p['wall_s'] / 60:.0f} min)" for p in trend["points"])
        recipe = f"the default recipe with `{' '.join(trend['basis'])}` (the default has no such series yet)" if trend["basis"] else "the default recipe"
        lines += [
            f"## {key}: schedule trend (estimated)",
            "",
            f"Endpoints of complete CPU runs of {recipe} at different lengths: {points}. A fit of top-1 = a + b ln(epochs) "
            f"gives {trend['points_per_doubling']:+.2f} points per doubling of the schedule and predicts {TREND_TARGET} % at "
            f"{trend['epochs_for_target']} epochs, about {trend['cpu_hours_for_target']} CPU-hours on this machine at the measured "
            "minutes per epoch. An extrapolation from few points, not a measurement.",
            "",
        ]
        if check := trend["check"]:
            recipe = f"the default with `{' '.join(check['recipe'])}`" if check["recipe"] else "the default recipe"
            missed = f"The prediction failed by {TREND_TARGET - check['top1']:.2f} points: the fit over-extrapolates, and that schedule does not reach {TREND_TARGET} %."
            verdict = "The prediction held." if check["reached_target"] else missed
            lines += [f"Measured check: {recipe}, {check['budget']}, reached {check['top1']:.2f} %. {verdict}", ""]
            if refit := check["refit"]:
                reach = (f"{TREND_TARGET} % at {refit['epochs_for_target']} epochs" if refit["epochs_for_target"]
                         else f"no schedule length that reaches {TREND_TARGET} %")  # fmt: skip
                mixed = " It mixes two recipes: the check's and the trend's." if check["recipe"] != trend["basis"] else ""
                lines += [f"Refit with the check's point added (estimated): top-1 = a - b epochs^-c levels off at {refit['asymptote']:.2f} % "
                          f"(c = {refit['exponent']:g}) and predicts {reach}.{mixed}", ""]  # fmt: skip
    return lines
