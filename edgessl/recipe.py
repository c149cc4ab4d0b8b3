"""Recipes: typed dataclasses, loaded from YAML, with dotted `key=value` overrides and clear errors."""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass, field
from pathlib import Path

import yaml


class RecipeError(ValueError):
    pass


@dataclass
class DataConfig:
    path: str = "synthetic"
    image_size: int = 32
    test_split: str = "test"
    train_limit: int = 0  # > 0: pretrain on a seeded random subset of this many images (quick ablations)
    stream: bool = False  # stream WebDataset shards instead of caching decoded arrays (data larger than memory)
    shuffle_buffer: int = 4096  # streaming: samples mixed across shards


@dataclass
class CorruptionConfig:
    enabled: bool = True  # false: no pretext tasks (view invariance alone; the ablation's baseline)
    site: str = "stage3"  # stage3 (tokens entering the token-mixing stage) | output (encoder output)
    target: str = "pixels"  # pixels (normalised patch pixels) | ema (clean-image tokens of an EMA encoder)
    mask_ratio: float = 0.3
    rot_ratio: float = 0.2
    rotation: str = "roll"  # roll (cyclic roll along features, as published) | rot90 (turn the token's pixel patch)
    num_shifts: int = 4  # K: rolls of k*D/(K+1) channels, k = 1..K; class 0 = untouched (rot90: K = 3)
    normalize_before_roll: bool = True
    corrupt_both_views: bool = False
    # true: view invariance reads a clean pass of the first view (stem to stage 2 shared with the corrupted
    # pass), so the invariance term never has to match a corrupted view
    clean_invariance: bool = False


@dataclass
class SchedulerConfig:
    enabled: bool = True
    interval: int = 50  # steps between ratio updates
    ema_decay: float = 0.98
    ratio_step: float = 0.05
    mask_bounds: tuple[float, float] = (0.15, 0.6)
    rot_bounds: tuple[float, float] = (0.1, 0.4)
    max_total: float = 0.8
    easy_below: float = 0.35  # EMA loss / first EMA loss under this: task too easy, corrupt more
    hard_above: float = 0.9  # over this: task not learning, corrupt less


@dataclass
class LossConfig:
    lambda_dis: float = 0.1  # lambda3, gradient-reversal disentanglement
    grl_scale: float = 1.0
    view_invariance: float = 1.0  # weight of the VICReg term between two views; 0 = single view
    vicreg_sim: float = 25.0
    vicreg_var: float = 25.0
    vicreg_cov: float = 1.0
    projector_dim: int = 1024
    ema_momentum: float = 0.996


@dataclass
class OptimConfig:
    epochs: int = 30
    batch_size: int = 256
    lr: float = 2e-3
    weight_decay: float = 0.05
    warmup_epochs: float = 1.0
    grad_clip: float = 3.0
    # the cosine learning-rate decay is laid out over max(epochs, schedule_epochs): larger than epochs, training
    # stops while the learning rate is still up (a budget-bound run cut from a longer schedule)
    schedule_epochs: float = 0.0
    # > 0: stop once the training loop has run this many minutes (summed over resumed segments, mid-run probes
    # excluded), wherever that falls in the schedule; the state is saved and the encoder exported as at the end
    max_minutes: float = 0.0
    # true: lay the cosine over optim.max_minutes of training instead of over epochs, so the learning rate reaches
    # zero when the time budget runs out however fast the machine is that day (the 2-hour CPU runs stopped 79-87 %
    # of the way down a 24-epoch cosine depending on the day). The learning rate then follows rank 0's clock: a
    # rerun is not bit-identical, and metrics.csv logs the rate of every logged step. On the 2-hour CPU recipe it gave
    # ~4 points less than a cosine cut by the budget (benchmarks/results/README.md), so no CPU recipe turns it on
    schedule_by_time: bool = False
    # > 0: keep an exponential moving average of the encoder weights (and BatchNorm statistics) with this
    # decay, warmed up as min(decay, (1 + step) / (10 + step)); encoder.pt and mid-run probes take the average
    encoder_ema: float = 0.0


@dataclass
class ProbeConfig:
    label_fraction: float = 0.2
    epochs: int = 100
    seed: int = 0
    monitor_every: int = 0  # > 0: also probe every N epochs during pretraining (runs/<name>/probe_curve.csv)
    # whose pooled outputs the probe reads; ["stage3", "stage4"] adds the token-mixing stage's 96 features
    # (benchmarks/results/probe_stages.md). The published protocol reads the encoder's output: stage4.
    stages: tuple[str, ...] = ("stage4",)
    # non-empty: the probe's weight decay is chosen from these on a held-out 20 % of the labelled images (the test
    # split never picks it); empty: a fixed 5e-4, the protocol of every result recorded before 2026-12-01
    weight_decays: tuple[float, ...] = ()
    # > 0: the head also trains on this many augmented copies of each labelled image (mirror, then shifts:
    # eval/probe.py augmented_copies), the crop + flip of SimCLR's linear evaluation; 0: unaugmented, as every
    # result recorded before 2026-12-02
    augment_copies: int = 0
    # how the linear layer is fitted: adamw (mini-batch, `epochs`; every result recorded before 2026-12-03) or
    # lbfgs (full-batch logistic regression to convergence; `weight_decays` are then its L2 penalties)
    solver: str = "adamw"


@dataclass
class AugmentRecipe:
    crop_min_scale: float = 0.2
    jitter: float = 0.4
    gray_prob: float = 0.2
    hue: float = 0.0  # max hue turn as a fraction of the colour circle; 0 = off
    # pixels of the two global views (0 = data.image_size); smaller views make cheaper steps (24 px on CIFAR-10:
    # 1.24x the img/s, but ~1 point behind at equal epochs; README)
    global_size: int = 0
    local_crops: int = 0  # multi-crop: extra small views, each pulled towards both global views
    local_size: int = 16  # pixels; a 16x16 crop costs a quarter of a 32x32 view
    local_scale: tuple[float, float] = (0.05, 0.3)


@dataclass
class Recipe:
    name: str = "default"
    encoder: str = "tinynext_t"
    seed: int = 0
    device: str = "cpu"  # cpu | cuda | cuda:N
    precision: str = "fp32"  # fp32 | bf16 (autocast)
    compile: bool = False  # torch.compile the training module
    threads: int = 0  # 0 = torch default
    log_every: int = 20
    checkpoint_every_steps: int = 200
    data: DataConfig = field(default_factory=DataConfig)
    corruption: CorruptionConfig = field(default_factory=CorruptionConfig)
    scheduler: SchedulerConfig = field(default_factory=SchedulerConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    probe: ProbeConfig = field(default_factory=ProbeConfig)
    augment: AugmentRecipe = field(default_factory=AugmentRecipe)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def _convert(value: object, typ: object, key: str) -> object:
    origin = typing.get_origin(typ)
    try:
        if typ is bool:
            if isinstance(value, str):
                if value.lower() in ("1", "true", "yes", "on"):
                    return True
                if value.lower() in ("0", "false", "no", "off"):
                    return False
                raise ValueError(value)
            return bool(value)
        if origin is tuple:
            items = yaml.safe_load(value) if isinstance(value, str) else value
            if isinstance(items, str):  # probe.stages=stage3,stage4
                items = [item.strip() for item in items.split(",")]
            args = typing.get_args(typ)
            types = [args[0]] * len(items) if args[-1] is Ellipsis else args
            return tuple(_convert(v, t, key) for v, t in zip(items, types, strict=True))
        if typ in (int, float, str):
            return typ(value)
    except (TypeError, ValueError) as err:
        raise RecipeError(f"recipe key {key!r}: cannot read {value!r} as {getattr(typ, '__name__', typ)}") from err
    return value


def _apply(obj: object, values: dict, prefix: str = "") -> None:
    hints = typing.get_type_hints(type(obj))
    for key, value in values.items():
        full = f"{prefix}{key}"
        if key not in hints:
            known = ", ".join(f"{prefix}{k}" for k in hints)
            raise RecipeError(f"unknown recipe key {full!r}; known keys: {known}")
        current = getattr(obj, key)
        if dataclasses.is_dataclass(current):
            if not isinstance(value, dict):
                raise RecipeError(f"recipe key {full!r} is a section; give its fields, e.g. {full}.<field>=...")
            _apply(current, value, f"{full}.")
        else:
            setattr(obj, key, _convert(value, hints[key], full))


def parse_overrides(overrides: list[str]) -> dict:
    nested: dict = {}
    for item in overrides:
        if "=" not in item:
            raise RecipeError(f"override {item!r} is not key=value (e.g. optim.epochs=5)")
        key, value = item.split("=", 1)
        node = nested
        *parents, leaf = key.strip().split(".")
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = value
    return nested


def _read_yaml(path: Path) -> dict:
    if not path.is_file():
        known = sorted(p.stem for p in Path("recipes").glob("*.yaml")) if Path("recipes").is_dir() else []
        raise RecipeError(f"recipe {path} not found" + (f"; recipes here: {', '.join(known)}" if known else ""))
    values = yaml.safe_load(path.read_text()) or {}
    if not isinstance(values, dict):
        raise RecipeError(f"recipe {path} must be a YAML mapping")
    return values


def recipe_from_dict(values: dict) -> Recipe:
    """A recipe from `Recipe.to_dict()` output, e.g. one stored with a result; keys added since take their defaults."""
    recipe = Recipe()
    _apply(recipe, values)
    return recipe


def flatten(tree: dict, prefix: str = "") -> dict:
    """A nested recipe dict with dotted keys: {"optim": {"lr": 1e-3}} -> {"optim.lr": 1e-3}."""
    flat: dict = {}
    for k, v in tree.items():
        flat |= flatten(v, f"{prefix}{k}.") if isinstance(v, dict) else {f"{prefix}{k}": v}
    return flat


def recipe_changes(old: dict, new: dict) -> dict[str, list]:
    """Dotted keys whose values differ between two stored recipes (`Recipe.to_dict()`, or its JSON):
    {"optim.epochs": [14, 64]}. Both are read back as Recipes first, so keys added since take their
    defaults and JSON lists compare equal to tuples."""
    before, after = (flatten(recipe_from_dict(d).to_dict()) for d in (old, new))
    return {k: [before.get(k), after.get(k)] for k in sorted(before.keys() | after.keys()) if before.get(k) != after.get(k)}


def load_recipe(path: str | Path | None = None, overrides: list[str] | None = None) -> Recipe:
    recipe = recipe_from_dict(_read_yaml(Path(path)) if path is not None else {})
    if overrides:
        _apply(recipe, parse_overrides(overrides))
    return recipe
