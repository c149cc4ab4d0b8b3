"""The `edgessl` typer app and what its commands share: options, the version flag, one-line errors."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

app = typer.Typer(help="edgessl: tiny vision encoders from unlabelled images to int8 firmware.", no_args_is_help=True, add_completion=False)


# shared by `budget`, `bench` and `targets`: one target, named the same way in each
TargetOption = Annotated[str, typer.Option(help="CPU family or board name (`edgessl targets` lists them)")]
BoardOption = Annotated[Optional[str], typer.Option(help="board of that family (default: the family's default)")]
CatalogueOption = Annotated[Optional[Path], typer.Option(help="extra YAML with your own boards/families")]
DeviceOption = Annotated[str, typer.Option(help="cpu, cuda or cuda:N")]


# the packages whose versions decide what a run measures or what an export contains: name them in a bug report
TOOLCHAIN = ("torch", "nncf", "onnx", "onnxruntime", "litert-torch", "ai-edge-litert", "ai-edge-quantizer", "tflite-micro")


def _print_version(value: bool) -> None:
    if not value:
        return
    from edgessl import __version__
    from edgessl.runtimes import package_version

    typer.echo(f"edgessl {__version__}")
    for name in TOOLCHAIN:
        typer.echo(f"  {name} {package_version(name)}")
    raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[bool, typer.Option("--version", callback=_print_version, is_eager=True, help="print the edgessl and toolchain versions")] = False,
) -> None:
    """edgessl: tiny vision encoders from unlabelled images to int8 firmware."""


def _fail(message: str) -> None:
    typer.secho(f"error: {message}", fg="red", err=True)
    raise typer.Exit(2)


def main() -> None:
    app()
