"""`edgessl` command line. Each command parses, loads the recipe, and calls the library."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

app = typer.Typer(help="edgessl: tiny vision encoders from unlabelled images to int8 firmware.", no_args_is_help=True, add_completion=False)


def _fail(message: str) -> None:
    typer.secho(f"error: {message}", fg="red", err=True)
    raise typer.Exit(2)


@app.command()
def pretrain(
    recipe: Annotated[Path, typer.Option(help="YAML recipe, e.g. recipes/cifar10.yaml")] = Path("recipes/smoke.yaml"),
    data: Annotated[Optional[str], typer.Option(help="data path (overrides data.path); 'synthetic' needs no files")] = None,
    epochs: Annotated[Optional[int], typer.Option(help="overrides optim.epochs")] = None,
    out: Annotated[Optional[Path], typer.Option(help="run folder (default runs/<recipe name>)")] = None,
    resume: Annotated[bool, typer.Option(help="continue from <out>/last.pt")] = False,
    probe: Annotated[bool, typer.Option(help="run the linear probe at the end when the data has labels")] = True,
    overrides: Annotated[Optional[list[str]], typer.Argument(help="recipe overrides, key=value (e.g. optim.lr=1e-3)")] = None,
) -> None:
    """Self-supervised dual-corruption pretraining of an encoder."""
    from edgessl.data.readers import DataError
    from edgessl.recipe import RecipeError, load_recipe
    from edgessl.train.pretrain import pretrain as run_pretrain

    extra = list(overrides or [])
    if data is not None:
        extra.append(f"data.path={data}")
    if epochs is not None:
        extra.append(f"optim.epochs={epochs}")
    try:
        r = load_recipe(recipe, extra)
        out_dir = out or Path("runs") / r.name
        result = run_pretrain(r, out_dir, resume=resume)
    except (DataError, RecipeError, ValueError, FileNotFoundError) as err:
        _fail(str(err))
    typer.echo(f"pretrained {result.steps} steps in {result.wall_seconds:.0f} s; encoder: {result.encoder_path}")
    if probe:
        _probe(result.encoder_path, r.data.path, r.probe.label_fraction, r.probe.epochs, r.probe.seed, out_dir)


def _probe(checkpoint: Path, data: str, fraction: float, epochs: int, seed: int, out_dir: Path) -> None:
    import torch

    from edgessl.data.cache import load_split
    from edgessl.data.splits import save_indices
    from edgessl.eval.features import load_encoder
    from edgessl.eval.probe import linear_probe
    from edgessl.train.checkpoint import save_atomic

    encoder, payload = load_encoder(checkpoint)
    train = load_split(data, "train", payload["image_size"])
    test = load_split(data, "test", payload["image_size"])
    if not train.labelled:
        typer.echo("data has no labels: skipping the linear probe")
        return
    result, head, indices = linear_probe(encoder, train, test, fraction, epochs, seed)
    typer.echo(result.protocol())
    typer.echo(f"linear probe top-1: {result.top1:.2f} %")
    save_indices(out_dir / "label_indices.json", indices, fraction, seed)
    save_atomic(
        {
            "kind": "edgessl-probe",
            "head": head.state_dict(),
            "classes": train.classes,
            "encoder_checkpoint": str(checkpoint),
            "result": result.to_dict(),
        },
        out_dir / "probe.pt",
    )
    (out_dir / "probe.json").write_text(json.dumps(result.to_dict(), indent=2))
    del torch


@app.command()
def probe(
    checkpoint: Annotated[Path, typer.Option(help="encoder.pt from `edgessl pretrain`")],
    data: Annotated[Optional[str], typer.Option(help="labelled data (default: the data the encoder was pretrained on)")] = None,
    label_fraction: Annotated[float, typer.Option(help="fraction of each class's labels to train on")] = 0.2,
    epochs: Annotated[int, typer.Option()] = 100,
    seed: Annotated[int, typer.Option()] = 0,
    out: Annotated[Optional[Path], typer.Option(help="where to write probe.pt (default: beside the checkpoint)")] = None,
) -> None:
    """Linear probe of a frozen encoder with a fraction of the labels."""
    from edgessl.data.readers import DataError
    from edgessl.train.checkpoint import load

    try:
        payload = load(checkpoint)
        _probe(checkpoint, data or payload["recipe"]["data"]["path"], label_fraction, epochs, seed, out or checkpoint.parent)
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


def main() -> None:
    app()


if __name__ == "__main__":
    main()
