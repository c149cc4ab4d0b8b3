import io
import json
import tarfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from edgessl.data.readers import DataError
from edgessl.data.stream import ShardStream
from edgessl.recipe import load_recipe
from edgessl.train.pretrain import pretrain

ROOT = Path(__file__).resolve().parents[2]


def _png(value: int, size: int) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.full((size, size, 3), value, np.uint8)).save(buf, format="PNG")  # lossless: the value identifies the sample
    return buf.getvalue()


def shard_paths(folder: Path, shards: int, per_shard: int, size: int = 32) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    names = []
    for s in range(shards):
        name = f"train-{s:06d}.tar"
        with tarfile.open(folder / name, "w") as tar:
            for i in range(per_shard):
                key = s * per_shard + i
                for ext, data in ((".png", _png(key, size)), (".cls", str(key % 2).encode())):
                    info = tarfile.TarInfo(f"{key:06d}{ext}")
                    info.size = len(data)
                    tar.addfile(info, io.BytesIO(data))
        names.append(name)
    meta = {"classes": ["even", "odd"], "splits": {"train": {"samples": shards * per_shard, "shards": names}}}
    (folder / "dataset.json").write_text(json.dumps(meta))


def _ids(batch) -> list[int]:
    return [int(img[0, 0, 0]) for img in batch.numpy()]


def test_an_epoch_streams_every_sample_once_shuffled_and_reproducibly(tmp_path):
    shard_paths(tmp_path, shards=4, per_shard=16)
    stream = ShardStream(tmp_path, "train", 32, batch=8, seed=0, buffer=12)
    assert stream.samples == 64
    batches = stream.batches(epoch=0)
    seen = [i for _ in range(8) for i in _ids(next(batches))]
    batches.close()
    assert sorted(seen) == list(range(64)) and seen != sorted(seen)
    again = stream.batches(epoch=0, skip=2)
    assert _ids(next(again)) == seen[16:24]  # resume mid-epoch: the same order, first batches skipped
    again.close()


def test_ranks_read_disjoint_shards(tmp_path):
    shard_paths(tmp_path, shards=4, per_shard=8)
    parts = []
    for rank in (0, 1):
        batches = ShardStream(tmp_path, "train", 32, batch=8, seed=0, rank=rank, world=2, buffer=4).batches(epoch=0)
        parts.append({i for _ in range(4) for i in _ids(next(batches))})
        batches.close()
    assert not parts[0] & parts[1] and len(parts[0] | parts[1]) == 32


def test_too_few_shards_for_the_ranks_is_a_clear_error(tmp_path):
    shard_paths(tmp_path, shards=1, per_shard=4)
    with pytest.raises(DataError, match="1 shards cannot feed 2 ranks"):
        ShardStream(tmp_path, "train", 32, batch=4, seed=0, rank=0, world=2)


def test_pretraining_from_streamed_shards(tmp_path):
    shard_paths(tmp_path / "data", shards=2, per_shard=64)
    recipe = load_recipe(ROOT / "recipes" / "smoke.yaml", [f"data.path={tmp_path / 'data'}", "data.stream=true", "optim.epochs=1", "optim.batch_size=32"])
    result = pretrain(recipe, tmp_path / "run")
    assert result.steps == 4 and result.encoder_path.is_file()
