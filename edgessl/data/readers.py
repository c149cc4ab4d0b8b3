"""Readers for the data layouts users have; each returns decoded uint8 arrays (N, H, W, 3).

Layouts: WebDataset shards (`.tar`/`.tar.gz`, `dataset.json` optional), plain image folders
(class sub-folders give labels), torchvision's `cifar-10-batches-py`, and Tiny-ImageNet-200.
"""

from __future__ import annotations

import io
import json
import pickle
import tarfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp"}
SPLIT_ALIASES = {"train": ("train",), "test": ("test", "val")}
DATA_HELP = (
    "expected one of: a folder of WebDataset shards (<split>-*.tar[.gz] holding <key>.jpg + <key>.cls), "
    "a folder of images (class sub-folders give labels), a torchvision CIFAR-10 folder (cifar-10-batches-py), "
    "or a Tiny-ImageNet-200 folder (train/<wnid>/images, val/images + val_annotations.txt). "
    "The reference data sets live in ../shared/data/{cifar10,tiny-imagenet-200}; "
    "`recipes/smoke.yaml` uses data=synthetic and needs no files."
)


class DataError(ValueError):
    """A data path that does not hold what we can read; the message says what was expected."""


def unreadable_shard(path: Path, err: Exception) -> DataError:
    # tarfile lists one failed method per line; the CLI promises a one-line error
    return DataError(f"shard {path} is not a readable tar archive ({' '.join(str(err).split())}); {DATA_HELP}")


@dataclass
class ImageArrays:
    images: np.ndarray  # uint8, N x H x W x 3
    labels: np.ndarray  # int64, N; -1 where unlabelled
    classes: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def labelled(self) -> bool:
        return bool(len(self.labels)) and bool((self.labels >= 0).all())


def decode_image(data: bytes, size: int | None) -> np.ndarray:
    img = Image.open(io.BytesIO(data)).convert("RGB")
    if size is not None and img.size != (size, size):
        img = img.resize((size, size), Image.BILINEAR)
    return np.asarray(img, dtype=np.uint8)


def _stack(images: list[np.ndarray], labels: list[int], classes: list[str], where: Path) -> ImageArrays:
    if not images:
        raise DataError(f"no images found in {where}; {DATA_HELP}")
    sizes = {im.shape for im in images}
    if len(sizes) > 1:
        raise DataError(f"images in {where} have different sizes {sorted(sizes)[:3]}; pass image_size to resize them")
    return ImageArrays(np.stack(images), np.asarray(labels, dtype=np.int64), classes)


def detect_layout(root: Path) -> str:
    if not root.exists():
        raise DataError(f"data path {root} does not exist; {DATA_HELP}")
    if root.is_file() and (root.name.endswith(".tar") or root.name.endswith(".tar.gz")):
        return "webdataset"
    if (root / "cifar-10-batches-py").is_dir() or (root / "data_batch_1").is_file():
        return "cifar10-pickle"
    if (root / "wnids.txt").is_file() or (root / "val" / "val_annotations.txt").is_file():
        return "tiny-imagenet"
    if any(root.glob("*.tar")) or any(root.glob("*.tar.gz")):
        return "webdataset"
    if any(p.suffix.lower() in IMAGE_SUFFIXES for p in root.rglob("*")):
        return "image-folder"
    raise DataError(f"cannot recognise the data in {root}; {DATA_HELP}")


def shard_paths(root: Path, split: str) -> list[Path]:
    if root.is_file():
        return [root]
    meta = root / "dataset.json"
    for name in SPLIT_ALIASES.get(split, (split,)):
        if meta.is_file():
            info = json.loads(meta.read_text()).get("splits", {}).get(name)
            if info and info.get("shards"):
                return [root / s for s in info["shards"]]
        found = sorted(list(root.glob(f"{name}-*.tar")) + list(root.glob(f"{name}-*.tar.gz")))
        if found:
            return found
    raise DataError(f"no shards for split {split!r} in {root} (looked for {split}-*.tar[.gz]); {DATA_HELP}")


def classes_from_meta(root: Path) -> list[str]:
    meta = root / "dataset.json" if root.is_dir() else root.parent / "dataset.json"
    if meta.is_file():
        return list(json.loads(meta.read_text()).get("classes", []))
    return []


def read_webdataset(root: Path, split: str, size: int | None) -> ImageArrays:
    images, labels = [], []
    for shard in shard_paths(root, split):
        if not shard.is_file():
            raise DataError(f"shard {shard} listed in dataset.json is missing")
        pending: dict[str, dict[str, bytes]] = {}
        try:
            with tarfile.open(shard, "r:*") as tar:
                for member in tar:
                    if not member.isfile():
                        continue
                    key, _, ext = member.name.partition(".")
                    pending.setdefault(key, {})[ext.lower()] = tar.extractfile(member).read()
        except (tarfile.TarError, OSError, EOFError) as err:
            raise unreadable_shard(shard, err) from err
        for parts in pending.values():
            img = next((parts[e] for e in ("jpg", "jpeg", "png", "webp") if e in parts), None)
            if img is None:
                continue
            images.append(decode_image(img, size))
            labels.append(int(parts["cls"].decode().strip()) if "cls" in parts else -1)
    return _stack(images, labels, classes_from_meta(root), root)


def read_image_folder(root: Path, split: str, size: int | None) -> ImageArrays:
    found = [root / name for name in SPLIT_ALIASES.get(split, (split,)) if (root / name).is_dir()]
    if not found and split != "train":
        raise DataError(f"no {split!r} split in {root}: add a {split}/ (or val/) folder with class sub-folders")
    base = found[0] if found else root
    files = sorted(p for p in base.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    dirs = sorted({p.parent.relative_to(base).parts[0] for p in files if p.parent != base})
    labelled = bool(dirs) and all(p.parent != base for p in files)
    index = {d: i for i, d in enumerate(dirs)}
    images = [decode_image(p.read_bytes(), size) for p in files]
    labels = [index[p.relative_to(base).parts[0]] if labelled else -1 for p in files]
    return _stack(images, labels, dirs if labelled else [], base)


def read_cifar10_pickle(root: Path, split: str, size: int | None) -> ImageArrays:
    base = root / "cifar-10-batches-py" if (root / "cifar-10-batches-py").is_dir() else root
    names = [f"data_batch_{i}" for i in range(1, 6)] if split == "train" else ["test_batch"]
    images, labels = [], []
    for name in names:
        path = base / name
        if not path.is_file():
            raise DataError(f"CIFAR-10 batch {path} is missing; {DATA_HELP}")
        with path.open("rb") as f:
            batch = pickle.load(f, encoding="bytes")
        images.append(np.asarray(batch[b"data"], dtype=np.uint8).reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))
        labels.extend(batch[b"labels"])
    arr = np.concatenate(images)
    if size is not None and size != 32:
        arr = np.stack([np.asarray(Image.fromarray(a).resize((size, size), Image.BILINEAR)) for a in arr])
    classes = []
    meta = base / "batches.meta"
    if meta.is_file():
        with meta.open("rb") as f:
            classes = [c.decode() for c in pickle.load(f, encoding="bytes")[b"label_names"]]
    return ImageArrays(np.ascontiguousarray(arr), np.asarray(labels, dtype=np.int64), classes)


def read_tiny_imagenet(root: Path, split: str, size: int | None) -> ImageArrays:
    wnids_file = root / "wnids.txt"
    if wnids_file.is_file():
        wnids = wnids_file.read_text().split()
    else:
        wnids = sorted(p.name for p in (root / "train").iterdir() if p.is_dir())
    index = {w: i for i, w in enumerate(wnids)}
    images, labels = [], []
    if split == "train":
        for wnid in wnids:
            for p in sorted((root / "train" / wnid / "images").glob("*")):
                images.append(decode_image(p.read_bytes(), size))
                labels.append(index[wnid])
    else:
        ann = root / "val" / "val_annotations.txt"
        if not ann.is_file():
            raise DataError(f"{ann} is missing; {DATA_HELP}")
        for line in ann.read_text().splitlines():
            name, wnid = line.split("\t")[:2]
            images.append(decode_image((root / "val" / "images" / name).read_bytes(), size))
            labels.append(index[wnid])
    return _stack(images, labels, wnids, root)


READERS = {
    "webdataset": read_webdataset,
    "image-folder": read_image_folder,
    "cifar10-pickle": read_cifar10_pickle,
    "tiny-imagenet": read_tiny_imagenet,
}


def read_split(root: str | Path, split: str, size: int | None = None) -> ImageArrays:
    root = Path(root)
    return READERS[detect_layout(root)](root, split, size)
