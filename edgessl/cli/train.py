"""Commands from images to an encoder and its measure: pretrain, probe, info, models."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from edgessl.cli.app import DeviceOption, _fail, app
from edgessl.recipe import ProbeConfig


@app.command()
def pretrain(
    recipe: Annotated[Path, typer.Option(help="YAML recipe, e.g. recipes/cifar10.yaml")] = Path("recipes/smoke.yaml"),
    data: Annotated[Optional[str], typer.Option(help="data path (overrides data.path); 'synthetic' needs no files")] = None,
    epochs: Annotated[Optional[int], typer.Option(help="overrides optim.epochs")] = None,
    max_minutes: Annotated[Optional[float], typer.Option(help="stop after this many minutes of training (overrides optim.max_minutes)")] = None,
    out: Annotated[Optional[Path], typer.Option(help="run folder (default runs/<recipe name>)")] = None,
    resume: Annotated[bool, typer.Option(help="continue from <out>/last.pt")] = False,
    device: Annotated[Optional[str], typer.Option(help="cpu, cuda or cuda:N (overrides device); under torchrun each rank takes its LOCAL_RANK GPU")] = None,
    probe: Annotated[bool, typer.Option(help="run the linear probe at the end when the data has labels")] = True,
    overrides: Annotated[Optional[list[str]], typer.Argument(help="recipe overrides, key=value (e.g. optim.lr=1e-3)")] = None,
) -> None:
    """Self-supervised dual-corruption pretraining of an encoder."""
    from edgessl.data.readers import DataError
    from edgessl.recipe import RecipeError, load_recipe
    from edgessl.train.distributed import launch_context
    from edgessl.train.pretrain import pretrain as run_pretrain

    extra = list(overrides or [])
    if data is not None:
        extra.append(f"data.path={data}")
    if epochs is not None:
        extra.append(f"optim.epochs={epochs}")
    if max_minutes is not None:
        extra.append(f"optim.max_minutes={max_minutes}")
    if device is not None:
        extra.append(f"device={device}")
    try:
        r = load_recipe(recipe, extra)
        out_dir = out or Path("runs") / r.name
        result = run_pretrain(r, out_dir, resume=resume)
    except (DataError, RecipeError, ValueError, FileNotFoundError) as err:
        _fail(str(err))
    if not launch_context().is_main:
        return  # under torchrun, rank 0 reports and probes
    world = f" on {result.world_size} processes" if result.world_size > 1 else ""
    typer.echo(f"pretrained {result.steps} steps{world} in {result.wall_seconds:.0f} s; encoder: {result.encoder_path}")
    if probe:
        _probe(result.encoder_path, r.data.path, r.probe, out_dir, r.device)


def _probe(checkpoint: Path, data: str, config: ProbeConfig, out_dir: Path, device: str = "cpu") -> None:
    from edgessl.data.cache import load_split
    from edgessl.data.splits import save_indices
    from edgessl.eval.features import load_encoder
    from edgessl.eval.probe import probe_with
    from edgessl.train.checkpoint import save_atomic

    encoder, payload = load_encoder(checkpoint)
    train = load_split(data, "train", payload["image_size"])
    if not train.labelled:
        typer.echo("data has no labels: skipping the linear probe")
        return
    test = load_split(data, "test", payload["image_size"])
    result, head, indices = probe_with(encoder, train, test, config, device)
    typer.echo(result.protocol())
    typer.echo(f"linear probe top-1: {result.top1:.2f} %")
    save_indices(out_dir / "label_indices.json", indices, config.label_fraction, config.seed)
    save_atomic(
        {
            "kind": "edgessl-probe",
            "head": head.state_dict(),
            "classes": train.classes,
            "encoder_checkpoint": str(Path(checkpoint).resolve()),
            "data": data,
            "result": result.to_dict(),
        },
        out_dir / "probe.pt",
    )
    (out_dir / "probe.json").write_text(json.dumps(result.to_dict(), indent=2))


def _weight_decays(text: str) -> tuple[float, ...]:
    """`0.0005,0.2` -> (0.0005, 0.2); empty -> () (the fixed 5e-4)."""
    try:
        decays = tuple(float(v) for v in text.split(",") if v.strip())
        if all(d >= 0 for d in decays):
            return decays
    except ValueError:
        pass
    raise ValueError(f"--weight-decays: expected comma-separated non-negative numbers such as 0.0005,0.05,0.2, got {text!r}")


@app.command()
def probe(
    checkpoint: Annotated[Path, typer.Option(help="encoder.pt from `edgessl pretrain`")],
    data: Annotated[Optional[str], typer.Option(help="labelled data (default: the data the encoder was pretrained on)")] = None,
    label_fraction: Annotated[float, typer.Option(help="fraction of each class's labels to train on")] = 0.2,
    epochs: Annotated[int, typer.Option()] = 100,
    seed: Annotated[int, typer.Option()] = 0,
    out: Annotated[Optional[Path], typer.Option(help="where to write probe.pt (default: beside the checkpoint)")] = None,
    stages: Annotated[str, typer.Option(help="comma-separated stages whose pooled outputs the probe reads, e.g. stage3,stage4")] = "stage4",
    weight_decays: Annotated[
        str, typer.Option(help="comma-separated weight decays to choose from on a held-out 20 % of the labelled images, e.g. 0.0005,0.05,0.2,0.5,1 (empty: 5e-4)")
    ] = "",
    augment_copies: Annotated[int, typer.Option(help="augmented copies of each labelled image the head also trains on (mirror, then shifts); 0: none")] = 0,
    solver: Annotated[str, typer.Option(help="adamw (mini-batch, --epochs) or lbfgs (logistic regression to convergence; --weight-decays are its L2 penalties)")] = "adamw",
    device: DeviceOption = "cpu",
) -> None:
    """Linear probe of a frozen encoder with a fraction of the labels."""
    from edgessl.data.readers import DataError
    from edgessl.eval.probe import SOLVERS
    from edgessl.models.tinynext import parse_stages
    from edgessl.train.checkpoint import load
    from edgessl.train.distributed import check_device

    try:
        check_device(device)
        payload = load(checkpoint)
        decays = _weight_decays(weight_decays)
        if augment_copies < 0:
            raise ValueError(f"--augment-copies must be 0 or more, got {augment_copies}")
        if solver not in SOLVERS:
            raise ValueError(f"--solver {solver!r}; known: {', '.join(SOLVERS)}")
        config = ProbeConfig(label_fraction, epochs, seed, stages=parse_stages(stages), weight_decays=decays, augment_copies=augment_copies, solver=solver)
        _probe(checkpoint, data or payload["recipe"]["data"]["path"], config, out or checkpoint.parent, device)
    except (DataError, ValueError, FileNotFoundError) as err:
        _fail(str(err))


@app.command()
def info(
    encoder: Annotated[str, typer.Option(help="encoder name")] = "tinynext_t",
    sizes: Annotated[str, typer.Option(help="comma-separated input sizes")] = "32,64",
) -> None:
    """Parameters, MACs per image and token grid of an encoder at each input size."""
    from rich.console import Console
    from rich.table import Table

    from edgessl.models import ENCODER_LIMIT_PARAMS, count_params, create_encoder, list_models
    from edgessl.models.profile import count_macs

    if encoder not in list_models():
        _fail(f"unknown encoder {encoder!r}; known: {', '.join(list_models())}")
    table = Table(title=f"{encoder} (encoder only; counted by edgessl's forward hooks)")
    for col in ("input", "parameters", "MACs / image", "token grid", "feature dim"):
        table.add_column(col, justify="right")
    for size in (int(s) for s in sizes.split(",")):
        model = create_encoder(encoder, size)
        g = model.grid_size(size)
        table.add_row(f"{size}x{size}", f"{count_params(model):,}", f"{count_macs(model, size) / 1e6:.2f} M", f"{g}x{g}", str(model.feature_dim))
    Console().print(table)
    if encoder == "tinynext_t":
        typer.echo(f"limit for the T encoder: {ENCODER_LIMIT_PARAMS:,} parameters")


@app.command("models")
def models_cmd() -> None:
    """List the encoders edgessl can build."""
    from edgessl.models import list_models

    for name in list_models():
        typer.echo(name)
