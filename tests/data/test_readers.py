import io
import json
import pickle
import tarfile
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from edgessl.data.cache import load_split
from edgessl.data.readers import DataError, detect_layout, read_split


def _jpeg(colour: int, size: int = 8) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.full((size, size, 3), colour, np.uint8)).save(buf, format="JPEG")
    return buf.getvalue()


def _write_shard(path: Path, n: int, labels: bool = True) -> None:
    with tarfile.open(path, "w:gz" if path.name.endswith(".gz") else "w") as tar:
        for i in range(n):
            members = {f"{i:05d}.jpg": _jpeg(10 * i)}
            if labels:
                members[f"{i:05d}.cls"] = str(i % 3).encode()
            for name, data in members.items():
                info = tarfile.TarInfo(name)
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))


@pytest.mark.parametrize("suffix", [".tar", ".tar.gz"])
def test_webdataset_shards_without_metadata(tmp_path, suffix):
    _write_shard(tmp_path / f"train-000000{suffix}", 5)
    _write_shard(tmp_path / f"train-000001{suffix}", 4)
    _write_shard(tmp_path / f"val-000000{suffix}", 3)
    train = read_split(tmp_path, "train")
    assert train.images.shape == (9, 8, 8, 3) and train.images.dtype == np.uint8
    assert sorted(set(train.labels.tolist())) == [0, 1, 2]
    assert len(read_split(tmp_path, "test")) == 3  # test falls back to val


def test_webdataset_with_dataset_json_names_shards_and_classes(tmp_path):
    _write_shard(tmp_path / "a.tar.gz", 6)
    (tmp_path / "dataset.json").write_text(json.dumps({"classes": ["x", "y", "z"], "splits": {"train": {"shards": ["a.tar.gz"]}}}))
    data = read_split(tmp_path, "train", size=16)
    assert data.classes == ["x", "y", "z"] and data.images.shape == (6, 16, 16, 3)


def test_image_folder_with_and_without_classes(tmp_path):
    for cls in ("cat", "dog"):
        (tmp_path / "labelled" / cls).mkdir(parents=True)
        for i in range(2):
            (tmp_path / "labelled" / cls / f"{i}.jpg").write_bytes(_jpeg(50))
    (tmp_path / "frames").mkdir()
    for i in range(3):
        (tmp_path / "frames" / f"f{i}.png").write_bytes(_jpeg(90))
    labelled = read_split(tmp_path / "labelled", "train")
    assert labelled.classes == ["cat", "dog"] and labelled.labels.tolist() == [0, 0, 1, 1]
    frames = read_split(tmp_path / "frames", "train")
    assert len(frames) == 3 and not frames.labelled
    with pytest.raises(DataError, match="no 'test' split"):
        read_split(tmp_path / "frames", "test")


def test_torchvision_cifar10_layout(tmp_path):
    base = tmp_path / "cifar-10-batches-py"
    base.mkdir()
    rng = np.random.default_rng(0)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        with (base / name).open("wb") as f:
            pickle.dump({b"data": rng.integers(0, 255, (4, 3072), dtype=np.uint8), b"labels": [0, 1, 2, 3]}, f)
    with (base / "batches.meta").open("wb") as f:
        pickle.dump({b"label_names": [b"airplane", b"automobile", b"bird", b"cat"]}, f)
    assert detect_layout(tmp_path) == "cifar10-pickle"
    train = read_split(tmp_path, "train")
    assert train.images.shape == (20, 32, 32, 3) and train.classes[0] == "airplane"
    assert len(read_split(tmp_path, "test")) == 4


def test_tiny_imagenet_layout(tmp_path):
    wnids = ["n01", "n02"]
    (tmp_path / "wnids.txt").write_text("\n".join(wnids))
    for w in wnids:
        (tmp_path / "train" / w / "images").mkdir(parents=True)
        for i in range(3):
            (tmp_path / "train" / w / "images" / f"{w}_{i}.JPEG").write_bytes(_jpeg(20, 64))
    (tmp_path / "val" / "images").mkdir(parents=True)
    lines = []
    for i, w in enumerate(["n02", "n01"]):
        (tmp_path / "val" / "images" / f"val_{i}.JPEG").write_bytes(_jpeg(30, 64))
        lines.append(f"val_{i}.JPEG\t{w}\t0\t0\t63\t63")
    (tmp_path / "val" / "val_annotations.txt").write_text("\n".join(lines))
    assert read_split(tmp_path, "train").labels.tolist() == [0, 0, 0, 1, 1, 1]
    assert read_split(tmp_path, "test").labels.tolist() == [1, 0]


def test_missing_path_says_what_was_expected(tmp_path):
    with pytest.raises(DataError, match="does not exist.*WebDataset.*shared/data"):
        read_split(tmp_path / "nowhere", "train")


@pytest.mark.parametrize("name", ["train-000000.tar.gz", "train-000000.tar"])
def test_malformed_shard_is_a_one_line_error(tmp_path, name):
    (tmp_path / name).write_bytes(b"not a tar file")
    with pytest.raises(DataError, match="not a readable tar") as err:
        read_split(tmp_path, "train")
    assert "\n" not in str(err.value)  # tarfile's own message lists each failed method on its own line


def test_cache_returns_the_same_arrays(tmp_path):
    _write_shard(tmp_path / "train-000000.tar", 4)
    first = load_split(tmp_path, "train", cache_dir=tmp_path / "c")
    assert len(list((tmp_path / "c").glob("*.npz"))) == 1
    second = load_split(tmp_path, "train", cache_dir=tmp_path / "c")
    np.testing.assert_array_equal(first.images, second.images)
    np.testing.assert_array_equal(first.labels, second.labels)


def _load_in_child(tmp_path: Path) -> bytes:
    return load_split(tmp_path / "data", "train", cache_dir=tmp_path / "c").images.tobytes()


def test_concurrent_processes_decode_a_split_once(tmp_path, monkeypatch):
    """torchrun ranks start together on a cold cache: one decodes, the other waits and reads its file."""
    import multiprocessing

    import edgessl.data.cache as cache_module

    (tmp_path / "data").mkdir()
    _write_shard(tmp_path / "data" / "train-000000.tar", 4)
    calls = tmp_path / "decodes.txt"

    def slow_read(*args, **kwargs):
        with open(calls, "a") as f:
            f.write("decode\n")
        time.sleep(0.5)  # both processes are inside load_split before the first one finishes
        return read_split(*args, **kwargs)

    monkeypatch.setattr(cache_module, "read_split", slow_read)
    with multiprocessing.get_context("fork").Pool(2) as pool:
        first, second = pool.map(_load_in_child, [tmp_path, tmp_path])
    assert first == second
    assert calls.read_text().count("decode") == 1
    assert [p.name for p in (tmp_path / "c").glob("*.npz")] and not list((tmp_path / "c").glob("*.tmp.npz"))
