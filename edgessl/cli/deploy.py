"""Commands from an encoder to firmware: finetune, export, budget, bench, predict, targets."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer

from edgessl.cli.app import BoardOption, CatalogueOption, DeviceOption, TargetOption, _fail, app
from edgessl.deploy.fidelity import DEFAULT_MAX_CLASS_DROP, DEFAULT_MAX_DROP, DEFAULT_MIN_AGREEMENT, MIN_CLASS_IMAGES
from edgessl.deploy.ranges import DEFAULT_RANGES

if TYPE_CHECKING:
    from edgessl.data.readers import ImageArrays
    from edgessl.deploy.pipeline import ClassifierBundle
    from edgessl.deploy.predict import Prediction, Predictor


@app.command()
def finetune(
    checkpoint: Annotated[Path, typer.Option(help="run folder, probe.pt, or (for --qat) finetuned.pt")],
    qat: Annotated[bool, typer.Option("--qat", help="quantization-aware finetuning with NNCF (int8 weights and activations) of the fp32 classifier")] = False,
    freeze_encoder: Annotated[bool, typer.Option(help="with --qat: train the classifier head only")] = False,
    epochs: Annotated[Optional[int], typer.Option(help="default: 20, or 2 with --qat")] = None,
    lr: Annotated[Optional[float], typer.Option(help="peak learning rate; default: 0.1 (SGD one-cycle), or 1e-4 with --qat (AdamW, cosine)")] = None,
    out: Annotated[Optional[Path], typer.Option(help="where to write the classifier (default: finetuned.pt, or classifier.pt with --qat, beside the checkpoint)")] = None,
    test_limit: Annotated[Optional[int], typer.Option(help="evaluate on the first N test images only")] = None,
    device: DeviceOption = "cpu",
) -> None:
    """Finetune encoder + classifier on the probe's labelled subset only (its fraction and seed): end to end in fp32,
    or with --qat through int8 fake-quantizers."""
    from edgessl.deploy.pipeline import FP32_SOURCES, finetune_probe, load_bundle, save_bundle, test_split, torch_top1
    from edgessl.train.distributed import check_device

    if freeze_encoder and not qat:
        _fail("--freeze-encoder applies to --qat (an fp32 run with a frozen encoder is the linear probe)")
    if qat and device != "cpu":
        _fail("--device applies to the fp32 fine-tune; --qat runs on the CPU")
    try:
        check_device(device)
        bundle = load_bundle(checkpoint, FP32_SOURCES) if qat else finetune_probe(checkpoint, 20 if epochs is None else epochs, lr, device)
    except (ValueError, FileNotFoundError) as err:
        _fail(str(err))
    test = test_split(bundle, test_limit)
    if qat:
        _qat(bundle, test, epochs, lr, freeze_encoder)
    else:
        typer.echo(f"fine-tuned encoder + linear head on the probe's labelled subset ({bundle.label_fraction:g} of the labels, seed {bundle.seed})")
        typer.echo(f"  top-1 on {len(test)} test images, BatchNorm folded: {torch_top1(bundle.model, test):.2f} %")
    target = out or _resolve_dir(checkpoint) / ("classifier.pt" if qat else "finetuned.pt")
    save_bundle(bundle, target)
    if qat:
        typer.echo(f"  real int8: run `edgessl export --checkpoint {target} --format tflite --int8`")
    typer.echo(f"wrote {target}")


def _qat(bundle: ClassifierBundle, test: ImageArrays, epochs: int | None, lr: float | None, freeze_encoder: bool) -> None:
    """QAT of the bundle's classifier in place: its model becomes the float model with the QAT-trained weights."""
    from edgessl.deploy.pipeline import labelled_subset, torch_top1
    from edgessl.deploy.qat import QAT_EPOCHS, QAT_LR, qat_finetune

    images, labels = labelled_subset(bundle)
    fp32 = torch_top1(bundle.model, test)
    epochs, lr = QAT_EPOCHS if epochs is None else epochs, QAT_LR if lr is None else lr
    result = qat_finetune(bundle.model, images, labels, epochs=epochs, lr=lr, freeze_encoder=freeze_encoder, seed=bundle.seed)
    fake_quant = torch_top1(result.fake_quant, test)
    after = torch_top1(result.model, test)
    bundle.model, bundle.stage = result.model, "qat"
    typer.echo(f"QAT: {result.steps} steps on {len(labels)} labelled images; top-1 on {len(test)} test images:")
    typer.echo(f"  fp32 before QAT {fp32:.2f} %  |  fake-quant (NNCF) {fake_quant:.2f} %  |  fp32 after QAT {after:.2f} %")


def _resolve_dir(path: Path) -> Path:
    return path if path.is_dir() else path.parent


@app.command()
def export(
    checkpoint: Annotated[Path, typer.Option(help="run folder, classifier.pt (after finetune) or probe.pt")],
    format: Annotated[str, typer.Option("--format", help="onnx | tflite | c")] = "tflite",
    int8: Annotated[bool, typer.Option("--int8", help="full-integer int8 (always on for --format c)")] = False,
    out: Annotated[Optional[Path], typer.Option(help="output folder (default: <run>/export)")] = None,
    max_drop: Annotated[float, typer.Option(help="fail when int8 top-1 falls more than this many points below fp32")] = DEFAULT_MAX_DROP,
    min_agreement: Annotated[float, typer.Option(help="fail when int8 and fp32 pick the same class on fewer than this % of test images")] = DEFAULT_MIN_AGREEMENT,
    max_class_drop: Annotated[float, typer.Option(help=f"fail when int8 loses more than this (top-1 points) on a class of >= {MIN_CLASS_IMAGES} images")] = DEFAULT_MAX_CLASS_DROP,
    test_limit: Annotated[Optional[int], typer.Option(help="fidelity on the first N test images (default: all)")] = None,
    ranges: Annotated[str, typer.Option(help="int8 activation ranges: mse (TFLite: min/max narrowed to the least expected error; ONNX: percentile) | minmax")] = DEFAULT_RANGES,
) -> None:
    """Export to ONNX, TFLite or a firmware C array; int8 exports write and enforce a fidelity report."""
    from edgessl.deploy.export import export as run_export
    from edgessl.deploy.fidelity import FidelityError, FidelityGate
    from edgessl.deploy.opcheck import UnsupportedOpError
    from edgessl.deploy.pipeline import FORMATS, load_bundle
    from edgessl.deploy.ranges import check_range_method

    if format not in FORMATS:
        _fail(f"unknown format {format!r}; known: {', '.join(FORMATS)}")
    try:
        check_range_method(ranges)  # before the checkpoint loads
        bundle = load_bundle(checkpoint)
        gate = FidelityGate(max_drop, min_agreement, max_class_drop)
        result = run_export(bundle, format, int8 or format == "c", out or _resolve_dir(checkpoint) / "export", gate, test_limit, ranges)
    except (UnsupportedOpError, FidelityError, ValueError, FileNotFoundError) as err:
        _fail(str(err))
    if result.report is not None:
        typer.echo(result.report.table())
    if result.arena is not None:
        typer.echo(f"TFLite Micro arena (measured): {result.arena['minimum_arena_size']:,} bytes")
    for key, path in result.artefacts.items():
        typer.echo(f"{key}: {path}")


def _int8_model(model: Path, out: Path | None) -> Path:
    """A .tflite as is; a checkpoint (run folder, probe.pt, classifier.pt) is exported to int8 on the fly."""
    if model.suffix == ".tflite":
        if not model.is_file():
            _fail(f"{model} not found")
        return model
    from edgessl.deploy.export import build_int8
    from edgessl.deploy.pipeline import labelled_subset, load_bundle

    bundle = load_bundle(model)
    target = out or _resolve_dir(model) / "export"
    return build_int8(bundle, target, labelled_subset(bundle)[0])["tflite_int8"]


@app.command()
def budget(
    model: Annotated[Path, typer.Argument(help="int8 .tflite, or a checkpoint to export on the fly")],
    target: TargetOption = "cortex-m7",
    board: BoardOption = None,
    catalogue: CatalogueOption = None,
    json_out: Annotated[Optional[Path], typer.Option("--json", help="write the report as JSON")] = None,
    layers: Annotated[int, typer.Option(help="rows of the per-layer table")] = 15,
) -> None:
    """Flash and SRAM against a microcontroller; exit code 1 when it does not fit."""
    from rich.console import Console

    from edgessl.targets.budget import budget as run_budget
    from edgessl.targets.catalogue import TargetError, resolve
    from edgessl.targets.report import print_budget

    try:
        b = resolve(target, board, catalogue)
        report = run_budget(_int8_model(model, None), b)
    except (TargetError, ValueError, FileNotFoundError) as err:
        _fail(str(err))
    print_budget(report, Console(), layers)
    if json_out is not None:
        json_out.write_text(json.dumps(report.to_dict(), indent=2))
    if not report.fits:
        raise typer.Exit(1)


@app.command()
def bench(
    model: Annotated[Path, typer.Argument(help="checkpoint (all runtimes) or int8 .tflite (LiteRT and TFLite Micro)")],
    target: TargetOption = "cortex-m7",
    board: BoardOption = None,
    catalogue: CatalogueOption = None,
    runs: Annotated[int, typer.Option(help="timed runs per runtime (after warm-up)")] = 50,
    out: Annotated[Optional[Path], typer.Option(help="folder for bench.json and bench.png")] = None,
) -> None:
    """Latency of the probe classifier: measured on this host in every runtime, estimated on the target."""
    from rich.console import Console

    from edgessl.targets.bench import bench as run_bench
    from edgessl.targets.bench import bench_runtimes, plot_layers
    from edgessl.targets.catalogue import TargetError, resolve
    from edgessl.targets.report import print_bench

    try:
        b = resolve(target, board, catalogue)
        tflite = _int8_model(model, None)
    except (TargetError, ValueError, FileNotFoundError) as err:
        _fail(str(err))
    runtimes, not_timed = bench_runtimes(tflite, None if model.suffix == ".tflite" else model)
    report = run_bench(tflite, b, runtimes, runs, not_timed)
    print_bench(report, Console())
    folder = out or tflite.parent
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "bench.json").write_text(json.dumps(report.to_dict(), indent=2))
    typer.echo(f"wrote {folder / 'bench.json'} and {plot_layers(report, folder / 'bench.png')}")


@app.command()
def predict(
    model: Annotated[Path, typer.Argument(help="exported .tflite / .onnx, classifier .pt, or a run folder (its export/model_int8.tflite, else its classifier checkpoint)")],
    images: Annotated[Path, typer.Argument(help="an image file or a folder of images, searched recursively; a sub-folder named after a class is that image's label")],
    runtime: Annotated[Optional[str], typer.Option(help="tflite-micro (the firmware's arithmetic) | litert (fast) | onnxruntime | pytorch; default by file type")] = None,
    top_k: Annotated[int, typer.Option(help="classes per image")] = 3,
    show: Annotated[int, typer.Option(help="images to print (all go to --out)")] = 20,
    out: Annotated[Optional[Path], typer.Option(help="write every prediction as CSV")] = None,
) -> None:
    """Classify your own images with the model the firmware embeds, resized to its input as for training."""
    from edgessl.data.readers import DataError
    from edgessl.deploy.predict import image_files, load_predictor, per_class_top1, top1_accuracy, write_csv

    try:
        predictor = load_predictor(model, runtime)
        files = image_files(images)
        predictions = _predict_with_progress(predictor, files, top_k)
    except (DataError, ValueError, FileNotFoundError) as err:
        _fail(str(err))
    size = predictor.image_size
    typer.echo(f"{len(files)} images, resized to {size}x{size}, through {predictor.model} in {predictor.runtime.version()}")
    for p in predictions[:show]:
        typer.echo(f"{p.image!s:50s} " + ", ".join(f"{name} {100 * prob:.1f} %" for name, prob in p.top))
    if len(predictions) > show:
        typer.echo(f"... {len(predictions) - show} more" + (f" in {out}" if out else " (--out writes them all)"))
    accuracy = top1_accuracy(predictions)
    if accuracy is not None:
        typer.echo(f"top-1 on the {accuracy[1]} images whose folder names a class: {accuracy[0]:.2f} %")
        typer.echo("  " + ", ".join(f"{name} {top1:.1f} % of {n}" for name, (top1, n) in per_class_top1(predictions).items()))
    if out is not None:
        write_csv(predictions, out)
        typer.echo(f"wrote {out}")


def _predict_with_progress(predictor: Predictor, files: list[Path], top_k: int) -> list[Prediction]:
    from edgessl.deploy.predict import CHUNK, predict
    from edgessl.train.progress import Progress

    if len(files) <= CHUNK:
        return list(predict(predictor, files, top_k))
    progress = Progress(-(-len(files) // CHUNK), 0, CHUNK, every=1, label="predict")  # TFLite Micro: ~20 s a chunk
    predictions: list[Prediction] = []
    try:
        for p in predict(predictor, files, top_k):
            predictions.append(p)
            if len(predictions) % CHUNK == 0 or len(predictions) == len(files):
                progress.advance(f"{len(predictions)}/{len(files)} images")
    finally:
        progress.close()
    return predictions


@app.command()
def targets(catalogue: CatalogueOption = None) -> None:
    """List CPU families and boards with clock, flash and SRAM."""
    from edgessl.targets.catalogue import load_catalogue

    cat = load_catalogue(catalogue)
    for name, b in sorted(cat["boards"].items()):
        default = " (default)" if cat["families"][b["family"]]["default_board"] == name else ""
        typer.echo(f"{name:20s} {b['family']:11s} {b['clock_mhz']:>4} MHz  flash {b['flash'] // 1024:>5} KiB  SRAM {b['sram'] // 1024:>5} KiB{default}")
