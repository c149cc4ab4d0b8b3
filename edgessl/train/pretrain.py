"""The pretraining loop: batched augmentation, dual-corruption losses, scheduler, atomic resumable checkpoints."""

from __future__ import annotations

import dataclasses
import json
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import torch
from torch.nn.parallel import DistributedDataParallel

from edgessl.data.augment import AugmentConfig, ssl_view
from edgessl.eval.probe import SOLVERS
from edgessl.models import create_encoder, use_fused_backward
from edgessl.models.tinynext import check_stages
from edgessl.recipe import Recipe, RecipeError, recipe_changes
from edgessl.ssl.dual_corruption import DualCorruptionSSL
from edgessl.ssl.scheduler import DynamicCorruptionScheduler
from edgessl.train.allocator import keep_freed_memory
from edgessl.train.batches import batch_source
from edgessl.train.checkpoint import encoder_payload, load, save_atomic
from edgessl.train.distributed import DistContext, barrier, check_device, cleanup, init_distributed, mean_across_ranks, parameter_checksums, rank0_value
from edgessl.train.ema import EncoderEMA
from edgessl.train.metrics import MetricsLog, plot_scheduler, scheduler_row
from edgessl.train.monitor import ProbeMonitor
from edgessl.train.progress import Progress

PRECISIONS = ("fp32", "bf16")


@dataclass
class PretrainResult:
    out_dir: Path
    encoder_path: Path
    steps: int
    wall_seconds: float
    compute_seconds: float
    data_seconds: float
    world_size: int = 1
    monitor_seconds: float = 0.0  # mid-run linear probes (probe.monitor_every): in wall_seconds, not in compute
    # training-loop wall time of the whole run, summed over resumed segments, without the mid-run probes
    run_seconds: float = 0.0
    epochs: float = 0.0  # epochs trained: fewer than the recipe's when optim.max_minutes stopped the run
    stopped_by_time: bool = False
    # one entry per training segment: the step (and epoch) it started at and the recipe keys changed on that resume
    segments: list[dict] = dataclasses.field(default_factory=list)


def lr_at(step: int, total: int, warmup: int, base: float, time_fraction: float | None = None) -> float:
    """Linear warmup over `warmup` steps, then a cosine to zero at step `total`, or, given `time_fraction` (the share
    of the time budget spent: optim.schedule_by_time), at the end of the budget."""
    if step < warmup:
        return base * (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup) if time_fraction is None else time_fraction
    return base * 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))


def setup_torch(recipe: Recipe) -> None:
    keep_freed_memory()
    torch.manual_seed(recipe.seed)
    if recipe.threads > 0:
        torch.set_num_threads(recipe.threads)


def step_generator(seed: int, rank: int, step: int) -> torch.Generator:
    """Augmentation and corruption randomness as a function of (seed, rank, step): a resumed run draws exactly
    what the killed one would have, and ranks draw different crops of their different samples."""
    return torch.Generator().manual_seed(seed * 1_000_003 + rank * 10_007 + step)


def wrap_for_training(method: DualCorruptionSSL, recipe: Recipe, ctx: DistContext, device: torch.device) -> torch.nn.Module:
    model: torch.nn.Module = method
    if ctx.enabled:
        model = DistributedDataParallel(method, device_ids=[device.index] if device.type == "cuda" else None)
    if recipe.compile:
        model = torch.compile(model)
    return model


def pretrain(recipe: Recipe, out_dir: Path, resume: bool = False, on_step: Callable[[int], None] | None = None) -> PretrainResult:
    """Train; `resume` continues from out_dir/last.pt. `on_step(step)` is called after every optimiser step.
    Under torchrun every rank calls this; rank 0 alone writes files."""
    check_runtime(recipe)
    ctx, device = init_distributed(recipe.device)
    try:
        return _run(recipe, out_dir, resume, ctx, device, on_step)
    finally:
        cleanup(ctx)


def _run(recipe: Recipe, out_dir: Path, resume: bool, ctx: DistContext, device: torch.device, on_step: Callable[[int], None] | None) -> PretrainResult:
    # Its own frame, so that the run and its DDP wrapper (which holds the process group) are freed on return,
    # before `cleanup` destroys the group, as before PretrainRun. While they outlived it a gloo rank hung twice
    # at exit in tests/train/test_distributed.py (session 64; not reproduced in ~80 later runs, cause unconfirmed).
    run = PretrainRun(recipe, out_dir, resume, ctx, device)
    return run.finish(run.train(on_step))


def check_runtime(recipe: Recipe) -> None:
    if recipe.precision not in PRECISIONS:
        raise RecipeError(f"precision {recipe.precision!r}; known: {', '.join(PRECISIONS)}")
    try:
        check_device(recipe.device)
    except ValueError as err:
        raise RecipeError(str(err)) from err
    try:
        check_stages(recipe.probe.stages)  # now, not after hours of pretraining
    except ValueError as err:
        raise RecipeError(f"probe.stages: {err}") from err
    if recipe.optim.schedule_by_time and recipe.optim.max_minutes <= 0:
        raise RecipeError("optim.schedule_by_time lays the cosine over the time budget: give optim.max_minutes too")
    if recipe.probe.solver not in SOLVERS:
        raise RecipeError(f"probe.solver {recipe.probe.solver!r}; known: {', '.join(SOLVERS)}")


@dataclass
class Training:
    """What one optimiser step needs."""

    recipe: Recipe
    method: DualCorruptionSSL
    model: torch.nn.Module  # the method, wrapped for DDP / torch.compile
    opt: torch.optim.Optimizer
    sched: DynamicCorruptionScheduler
    ctx: DistContext
    horizon: int  # steps the learning-rate schedule is laid out over (>= the steps run)
    warmup: int
    ema: EncoderEMA | None = None  # optim.encoder_ema

    def __post_init__(self) -> None:  # fixed for the whole run: built once, not per step
        a = self.recipe.augment
        self.aug = AugmentConfig(crop_scale=(a.crop_min_scale, 1.0), jitter=a.jitter, gray_prob=a.gray_prob, hue=a.hue)
        self.local_aug = dataclasses.replace(self.aug, crop_scale=a.local_scale)
        self.params = [p for p in self.method.parameters() if p.requires_grad]

    def step(self, step: int, raw: torch.Tensor, time_fraction: float | None = None) -> tuple[dict[str, float], bool, float]:
        """One step on a uint8 batch (`time_fraction`: see lr_at); returns the rank-averaged losses, whether the
        scheduler changed, and the seconds spent on augmentation."""
        r, method = self.recipe, self.method
        t0 = time.perf_counter()
        gen = step_generator(r.seed, self.ctx.rank, step)
        views = self.views(raw, gen)
        aug_s = time.perf_counter() - t0
        for g in self.opt.param_groups:
            g["lr"] = lr_at(step, self.horizon, self.warmup, r.optim.lr, time_fraction)
        s = self.sched.state
        with torch.autocast(raw.device.type, dtype=torch.bfloat16, enabled=r.precision == "bf16"):
            losses = self.model(views, s.mask_ratio, s.rot_ratio, gen)
            loss = method.total_loss(losses, s.lambda_rec, s.lambda_rot)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.params, r.optim.grad_clip)
        self.opt.step()
        method.update_teacher()
        if self.ema is not None:
            self.ema.update(method.encoder)
        values = mean_across_ranks(losses | {"loss": loss}, self.ctx)  # the step's one host-device sync
        if not math.isfinite(values["loss"]):
            raise FloatingPointError(f"loss is {values['loss']} at step {step}; last.pt holds the state before it")
        changed = self.sched.update(values["rec"], values["rot"]) if r.corruption.enabled else False
        return values, changed, aug_s

    def views(self, raw: torch.Tensor, gen: torch.Generator) -> list[torch.Tensor]:
        """The global views, then all local crops stacked into one batch (one encoder pass for all of them)."""
        size = self.recipe.augment.global_size or None
        views = [ssl_view(raw, self.aug, gen, size) for _ in range(self.method.views_needed())]
        a = self.recipe.augment
        if a.local_crops:
            views.append(torch.cat([ssl_view(raw, self.local_aug, gen, a.local_size) for _ in range(a.local_crops)]))
        return [v.contiguous(memory_format=torch.channels_last) for v in views]


def first_segment() -> dict:
    """The segment of a run from step 0 (also what checkpoints written before segments were kept had)."""
    return {"from_step": 0, "recipe_changes": {}}


class PretrainRun:
    """One training segment, from step 0 or from out_dir/last.pt: the model, optimiser and corruption scheduler,
    the step counter and clocks, and rank 0's logs. `train()` runs the steps, `finish()` writes the outputs."""

    def __init__(self, recipe: Recipe, out_dir: Path, resume: bool, ctx: DistContext, device: torch.device) -> None:
        setup_torch(recipe)
        out_dir.mkdir(parents=True, exist_ok=True)
        self.recipe, self.out_dir, self.ctx, self.device = recipe, out_dir, ctx, device
        self.source, self.classes = batch_source(recipe, ctx, device)
        self.method = DualCorruptionSSL(create_encoder(recipe.encoder, recipe.data.image_size), recipe).to(device, memory_format=torch.channels_last)
        use_fused_backward(self.method)
        # fused: one pass over all parameters (CPU, one thread, batch 64: the optimiser step 17.6 -> 4.6 ms of a ~1.1 s step)
        self.opt = torch.optim.AdamW((p for p in self.method.parameters() if p.requires_grad), lr=recipe.optim.lr, weight_decay=recipe.optim.weight_decay, fused=True)
        self.sched = DynamicCorruptionScheduler(recipe.scheduler, recipe.corruption.mask_ratio, recipe.corruption.rot_ratio)
        self.ema = EncoderEMA(self.method.encoder, recipe.optim.encoder_ema) if recipe.optim.encoder_ema > 0 else None
        self.batch = min(recipe.optim.batch_size, self.source.samples)
        self.steps_per_epoch = self.source.samples // self.batch
        self.total = self.steps_per_epoch * recipe.optim.epochs
        self.step, self.prior_s, self.segments = 0, 0.0, [first_segment()]
        self.last_path = out_dir / "last.pt"
        if resume and self.last_path.is_file():
            self._restore()
        self.training = self._training()
        self.monitor = ProbeMonitor(recipe, out_dir, resume, str(device)) if recipe.probe.monitor_every > 0 and ctx.is_main else None
        self.budget_s = recipe.optim.max_minutes * 60
        self.log, self.progress = self._open_logs(resume) if ctx.is_main else (None, None)
        self.compute_s = self.data_s = 0.0
        self.saved_at = self.step
        self.t_start = time.perf_counter()

    @property
    def exported(self) -> torch.nn.Module:
        """What encoder.pt and the mid-run probes read: the encoder average when optim.encoder_ema is on."""
        return self.ema.module if self.ema is not None else self.method.encoder

    def _restore(self) -> None:
        state = load(self.last_path)
        self.method.load_state_dict(state["method"])
        self.opt.load_state_dict(state["optimizer"])
        self.sched.load_state_dict(state["scheduler"])
        self.step = state["step"]
        self.prior_s = state.get("run_seconds", 0.0)
        self.segments = _resumed_segments(state, self.out_dir, self.recipe, self.step)
        if self.ema is not None:
            _resume_ema(self.ema, self.method.encoder, state, self.ctx)
        if self.ctx.is_main:
            print(f"resumed from {self.last_path} at step {self.step}/{self.total}", flush=True)
            for key, (before, now) in self.segments[-1]["recipe_changes"].items():
                print(f"  recipe changed on resume: {key} {before} -> {now}", flush=True)

    def _training(self) -> Training:
        """Wrapped for DDP / torch.compile after the restore, so that every rank starts from the checkpoint."""
        r, steps = self.recipe, self.steps_per_epoch
        horizon = round(steps * max(r.optim.epochs, r.optim.schedule_epochs))  # of the lr schedule
        model = wrap_for_training(self.method, r, self.ctx, self.device)
        return Training(r, self.method, model, self.opt, self.sched, self.ctx, horizon, int(r.optim.warmup_epochs * steps), self.ema)

    def _open_logs(self, resume: bool) -> tuple[MetricsLog, Progress]:
        (self.out_dir / "recipe.json").write_text(json.dumps(self.recipe.to_dict(), indent=2))
        log = MetricsLog(self.out_dir, append=resume, after_step=self.step)
        budget_left = self.budget_s - self.prior_s if self.budget_s > 0 else math.inf
        return log, Progress(self.total, self.step, self.batch, self.recipe.log_every, budget_left)

    def elapsed(self) -> float:
        return time.perf_counter() - self.t_start

    def run_seconds(self, elapsed: float) -> float:
        """This segment's `elapsed` seconds plus the earlier segments', without the mid-run probes."""
        return self.prior_s + elapsed - (self.monitor.seconds if self.monitor else 0.0)

    def budget_used(self) -> float:
        """Share of optim.max_minutes spent, by rank 0's clock on every rank (the ranks stop at the same step)."""
        return rank0_value(self.run_seconds(self.elapsed()) / self.budget_s, self.ctx) if self.budget_s > 0 else 0.0

    def save_state(self) -> None:
        if not self.ctx.is_main:
            return
        state = {
            "method": self.method.state_dict(),
            "optimizer": self.opt.state_dict(),
            "scheduler": self.sched.state_dict(),
            "step": self.step,
            "recipe": self.recipe.to_dict(),
            "segments": self.segments,
        }
        if self.ema is not None:
            state["encoder_ema"] = self.ema.state_dict()
        save_atomic(state | {"run_seconds": self.run_seconds(self.elapsed())}, self.last_path)

    def train(self, on_step: Callable[[int], None] | None = None) -> bool:
        """Steps until the recipe's epochs are done or the time budget is spent; returns whether time stopped it."""
        self.method.train()
        stopped = self.budget_used() >= 1
        while self.step < self.total and not stopped:
            epoch, start = divmod(self.step, self.steps_per_epoch)
            batches = self.source.batches(epoch, skip=start)
            for _ in range(start, self.steps_per_epoch):
                used = self.budget_used()
                if stopped := used >= 1:
                    break
                self._step(batches, epoch, used)
                self._checkpoint_and_probe()
                if on_step is not None:
                    on_step(self.step)
            batches.close()
        return stopped

    def _step(self, batches: Iterator[torch.Tensor], epoch: int, budget_used: float) -> None:
        t0 = time.perf_counter()
        raw = next(batches).to(self.device)
        t1 = time.perf_counter()
        values, changed, aug_s = self.training.step(self.step, raw, budget_used if self.recipe.optim.schedule_by_time else None)
        self.step += 1
        self.data_s += t1 - t0 + aug_s
        self.compute_s += time.perf_counter() - t1 - aug_s
        if self.log is None or self.progress is None:  # not rank 0
            return
        self.progress.advance(f"loss {values['loss']:.3f} rec {values['rec']:.3f} rot {values['rot']:.3f} acc {values['rot_acc']:.2f}")
        if changed or self.step % self.recipe.log_every == 0 or self.step == self.total:
            row = {"step": self.step, "epoch": epoch, "lr": self.opt.param_groups[0]["lr"], **values, **scheduler_row(self.sched)}
            self.log.write(row | {"img_per_s": self.progress.rate()})

    def _checkpoint_and_probe(self) -> None:
        step, every = self.step, self.recipe.checkpoint_every_steps
        epoch_done = step // self.steps_per_epoch if step % self.steps_per_epoch == 0 else None
        if step % every == 0 or (epoch_done is not None and step - self.saved_at >= every // 4):
            self.save_state()  # every epoch too, unless epochs are short (a GPU's few seconds): each save costs ~0.1 s
            self.saved_at = step
        if self.monitor is not None and epoch_done is not None and self.monitor.due(epoch_done):
            top1 = self.monitor.run(self.exported, epoch_done, step)
            self.method.train()
            print(f"epoch {epoch_done}: linear probe {top1:.2f} % ({self.monitor.path})", flush=True)

    def finish(self, stopped: bool) -> PretrainResult:
        """The last checkpoint, encoder.pt and the run's records (rank 0), once every rank is done."""
        self.save_state()
        wall = self.elapsed()
        epochs = self.step / self.steps_per_epoch
        if stopped and self.ctx.is_main:
            print(f"stopped by optim.max_minutes={self.recipe.optim.max_minutes:g} at step {self.step}/{self.total} ({epochs:.2f} epochs)", flush=True)
        checksums = parameter_checksums(self.method, self.ctx)
        encoder_path = self.out_dir / "encoder.pt"
        if self.log is not None and self.progress is not None:
            self.progress.close()
            self.log.close()
            self._write_outputs(encoder_path, checksums)
        barrier(self.ctx)
        segments = [seg | {"from_epoch": round(seg["from_step"] / self.steps_per_epoch, 2)} for seg in self.segments]
        return PretrainResult(
            self.out_dir,
            encoder_path,
            self.step,
            wall,
            self.compute_s,
            self.data_s,
            world_size=self.ctx.world_size,
            monitor_seconds=self.monitor.seconds if self.monitor else 0.0,
            run_seconds=self.run_seconds(wall),
            epochs=epochs,
            stopped_by_time=stopped,
            segments=segments,
        )

    def _write_outputs(self, encoder_path: Path, checksums: list[float]) -> None:
        r = self.recipe
        save_atomic(encoder_payload(self.exported, r.encoder, r.data.image_size, r.to_dict(), {"classes": self.classes, "steps": self.step}), encoder_path)
        (self.out_dir / "scheduler.json").write_text(json.dumps(self.sched.history, indent=1))
        record = {"world_size": self.ctx.world_size, "steps": self.step, "parameter_checksums": checksums}
        (self.out_dir / "distributed.json").write_text(json.dumps(record, indent=1))
        plot_scheduler(self.sched.history, self.out_dir / "scheduler.png")


def _resumed_segments(state: dict, out_dir: Path, recipe: Recipe, step: int) -> list[dict]:
    """The checkpoint's segment list plus this resume, with the recipe keys changed since the last segment
    (a lengthened schedule, a new time budget): a result trained in segments says how it was trained."""
    before = state.get("recipe")
    if before is None and (out_dir / "recipe.json").is_file():  # checkpoints written before the recipe was kept in them
        before = json.loads((out_dir / "recipe.json").read_text())
    changes = recipe_changes(before, recipe.to_dict()) if before else {}
    return [*state.get("segments", [first_segment()]), {"from_step": step, "recipe_changes": changes}]


def _resume_ema(ema: EncoderEMA, encoder: torch.nn.Module, state: dict, ctx: DistContext) -> None:
    if "encoder_ema" in state:
        ema.load_state_dict(state["encoder_ema"])
        return
    ema.module.load_state_dict(encoder.state_dict())  # switched on mid-run: the average starts here
    if ctx.is_main:
        print("last.pt has no encoder average (optim.encoder_ema was off); the average starts at the resumed step", flush=True)
