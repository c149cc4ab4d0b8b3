"""edgessl.deploy.predict and `edgessl predict`: image files through an exported model, in the firmware's runtime."""

import csv
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from edgessl.cli import app
from edgessl.data.readers import DataError
from edgessl.deploy.exporters import write_metadata
from edgessl.deploy.predict import image_files, load_predictor, per_class_top1, predict, top1_accuracy
from edgessl.runtimes.litert import LiteRTRuntime
from edgessl.runtimes.tflm import TFLMRuntime

CLASSES = [f"c{i}" for i in range(10)]


def _frames(root: Path, sizes: list[tuple[int, int]], folder: str = "c3") -> list[Path]:
    """Random camera-like frames of the given (width, height), saved losslessly under root/folder."""
    rng = np.random.default_rng(1)
    (root / folder).mkdir(parents=True, exist_ok=True)
    paths = []
    for i, (w, h) in enumerate(sizes):
        paths.append(root / folder / f"{i}.png")
        Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(paths[-1])
    return paths


@pytest.fixture()
def named_model(int8_model: Path, tmp_path: Path) -> Path:
    """The int8 fixture with the class names an export writes beside it."""
    model = shutil.copy(int8_model, tmp_path / "model_int8.tflite")
    write_metadata(Path(model), {"classes": CLASSES})
    return Path(model)


def test_predictions_are_the_runtime_output_on_images_resized_as_for_training(named_model: Path, tmp_path: Path) -> None:
    files = _frames(tmp_path / "frames", [(32, 32), (48, 40), (320, 240)])
    predictor = load_predictor(named_model)
    assert predictor.runtime.name == "tflite-micro" and predictor.image_size == 32 and predictor.classes == CLASSES
    predictions = list(predict(predictor, image_files(tmp_path / "frames"), top_k=3))
    resized = np.stack([np.asarray(Image.open(f).convert("RGB").resize((32, 32), Image.BILINEAR)) for f in files])
    expected = np.argsort(-TFLMRuntime(named_model).run(resized), axis=1, kind="stable")[:, :3]
    assert [[CLASSES.index(name) for name, _ in p.top] for p in predictions] == expected.tolist()
    for p in predictions:
        probs = [prob for _, prob in p.top]
        assert probs == sorted(probs, reverse=True) and 0 < sum(probs) <= 1 + 1e-9 and p.label == "c3"


def test_accuracy_counts_only_images_whose_folder_names_a_class(named_model: Path, tmp_path: Path) -> None:
    _frames(tmp_path / "frames", [(32, 32)] * 4, folder="c3")
    _frames(tmp_path / "frames", [(32, 32)] * 2, folder="unsorted")
    predictions = list(predict(load_predictor(named_model), image_files(tmp_path / "frames")))
    labelled = [p for p in predictions if p.label == "c3"]
    assert len(labelled) == 4 and sum(p.label is None for p in predictions) == 2
    assert top1_accuracy(predictions) == (100 * sum(p.top[0][0] == "c3" for p in labelled) / 4, 4)
    assert top1_accuracy([p for p in predictions if p.label is None]) is None
    assert per_class_top1(predictions) == {"c3": top1_accuracy(predictions)}  # the unlabelled folder counts nowhere


def test_a_model_without_class_names_predicts_class_indices(int8_model: Path, tmp_path: Path) -> None:
    _frames(tmp_path, [(32, 32)])
    (p,) = predict(load_predictor(int8_model, "litert"), image_files(tmp_path), top_k=10)
    assert sorted(name for name, _ in p.top) == sorted(str(i) for i in range(10)) and p.label is None


def test_an_fp32_tflite_runs_in_tflite_micro_as_in_litert(int8_model: Path) -> None:
    fp32 = int8_model.parent / "m_fp32.tflite"  # written beside the int8 file by the fixture
    images = np.random.default_rng(2).integers(0, 256, (3, 32, 32, 3), dtype=np.uint8)
    np.testing.assert_allclose(TFLMRuntime(fp32).run(images), LiteRTRuntime(fp32).run(images), rtol=1e-4, atol=1e-4)


def test_bad_input_is_one_clear_error(named_model: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="pytorch runs .pt files, not model_int8.tflite"):
        load_predictor(named_model, "pytorch")
    with pytest.raises(ValueError, match="known: tflite-micro, litert, onnxruntime, pytorch"):
        load_predictor(named_model, "tvm")
    with pytest.raises(FileNotFoundError, match="pass an exported .tflite"):
        load_predictor(tmp_path / "missing.tflite")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no images"):
        image_files(tmp_path / "empty")
    (tmp_path / "broken.jpg").write_bytes(b"not a jpeg")
    with pytest.raises(DataError, match="broken.jpg is not a readable image"):
        list(predict(load_predictor(named_model), [tmp_path / "broken.jpg"]))


def test_cli_prints_top_k_and_accuracy_and_writes_every_prediction(named_model: Path, tmp_path: Path) -> None:
    _frames(tmp_path / "frames", [(32, 32)] * 3)
    out = tmp_path / "predictions.csv"
    result = CliRunner().invoke(app, ["predict", str(named_model), str(tmp_path / "frames"), "--top-k", "2", "--show", "1", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "3 images, resized to 32x32" in result.output and "tflite-micro" in result.output
    assert "... 2 more in" in result.output and "top-1 on the 3 images whose folder names a class" in result.output
    assert re.search(r"c3 \d+\.\d % of 3", result.output)  # per class
    rows = list(csv.DictReader(out.open()))
    assert len(rows) == 3 and {r["label"] for r in rows} == {"c3"} and all(r["class2"] in CLASSES for r in rows)
    bad = CliRunner().invoke(app, ["predict", str(named_model), str(tmp_path / "frames"), "--runtime", "tvm"])
    assert bad.exit_code == 2 and "known: tflite-micro" in bad.output
