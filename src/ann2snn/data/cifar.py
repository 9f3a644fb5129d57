"""CIFAR-10 and CIFAR-100 in the official "python version" layout; nothing is downloaded.

Expected files (``data_dir`` may be the extracted folder or its parent; default ``$ANN2SNN_DATA_DIR`` or
``./data``)::

    cifar-10-batches-py/data_batch_1 .. data_batch_5, test_batch     (keys b"data", b"labels")
    cifar-100-python/train, test                                      (keys b"data", b"fine_labels")

Security: these files are Python pickles. They are read with :func:`ann2snn.safeload.safe_pickle_load`, which
builds only plain containers and numpy arrays and refuses any other global, so a malicious file runs no code.

Shape:
    x: ``[3, 32, 32]`` float32 in ``[0, 1]`` (bytes / 255); y: int64 in ``0..K-1`` (K = 10 or 100).
"""

from __future__ import annotations

import dataclasses
import functools
from pathlib import Path

import numpy as np
from torch.utils.data import TensorDataset

from ann2snn.data.base import (
    DatasetInfo,
    check_image_size,
    check_limit,
    check_split,
    default_data_root,
    tensor_dataset,
)
from ann2snn.errors import DatasetError
from ann2snn.safeload import safe_pickle_load

IMAGE_SIZE = 32
CIFAR10_CLASSES = (
    "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck",
)  # fmt: skip
CIFAR100_CLASSES = (
    "apple", "aquarium_fish", "baby", "bear", "beaver", "bed", "bee", "beetle", "bicycle", "bottle",
    "bowl", "boy", "bridge", "bus", "butterfly", "camel", "can", "castle", "caterpillar", "cattle",
    "chair", "chimpanzee", "clock", "cloud", "cockroach", "couch", "crab", "crocodile", "cup", "dinosaur",
    "dolphin", "elephant", "flatfish", "forest", "fox", "girl", "hamster", "house", "kangaroo", "keyboard",
    "lamp", "lawn_mower", "leopard", "lion", "lizard", "lobster", "man", "maple_tree", "motorcycle", "mountain",
    "mouse", "mushroom", "oak_tree", "orange", "orchid", "otter", "palm_tree", "pear", "pickup_truck", "pine_tree",
    "plain", "plate", "poppy", "porcupine", "possum", "rabbit", "raccoon", "ray", "road", "rocket",
    "rose", "sea", "seal", "shark", "shrew", "skunk", "skyscraper", "snail", "snake", "spider",
    "squirrel", "streetcar", "sunflower", "sweet_pepper", "table", "tank", "telephone", "television", "tiger",
    "tractor", "train", "trout", "tulip", "turtle", "wardrobe", "whale", "willow_tree", "wolf", "woman", "worm",
)  # fmt: skip


@dataclasses.dataclass(frozen=True)
class _Layout:
    name: str
    folder: str
    files: dict[str, tuple[str, ...]]
    label_key: bytes
    info: DatasetInfo
    archive: str


LAYOUTS = {
    "cifar10": _Layout(
        name="cifar10",
        folder="cifar-10-batches-py",
        files={"train": tuple(f"data_batch_{i}" for i in range(1, 6)), "test": ("test_batch",)},
        label_key=b"labels",
        info=DatasetInfo("cifar10", 10, 3, IMAGE_SIZE, CIFAR10_CLASSES),
        archive="https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
    ),
    "cifar100": _Layout(
        name="cifar100",
        folder="cifar-100-python",
        files={"train": ("train",), "test": ("test",)},
        label_key=b"fine_labels",
        info=DatasetInfo("cifar100", 100, 3, IMAGE_SIZE, CIFAR100_CLASSES),
        archive="https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz",
    ),
}


def _how_to_get(layout: _Layout) -> str:
    return (
        f"download {layout.archive} yourself (ann2snn never downloads), extract it and pass --data-dir "
        f"(data_dir=) pointing at the extracted {layout.folder}/ folder or its parent, or set $ANN2SNN_DATA_DIR"
    )


def _resolve_folder(layout: _Layout, data_dir: str | Path | None) -> Path:
    base = default_data_root() if data_dir is None else Path(data_dir)
    marker = layout.files["test"][0]
    for folder in (base, base / layout.folder):
        if (folder / marker).is_file() or (folder / layout.files["train"][0]).is_file():
            return folder
    raise DatasetError(
        f"{layout.name} not found in {base} (looked for {layout.folder}/{marker}); {_how_to_get(layout)}"
    )


MAX_BATCH_BYTES = 512 * 2**20
"""Largest CIFAR batch file read (the CIFAR-100 train file, the largest, has about 160 MB)."""


def _read_batch(layout: _Layout, path: Path) -> tuple[np.ndarray, np.ndarray]:
    if not path.is_file():
        raise DatasetError(f"{layout.name} file {path} is missing; {_how_to_get(layout)}")
    size = path.stat().st_size
    if size > MAX_BATCH_BYTES:
        raise DatasetError(
            f"{layout.name} file {path} has {size:,} bytes, more than a batch file can ({MAX_BATCH_BYTES:,}); "
            f"{_how_to_get(layout)}"
        )
    try:
        with path.open("rb") as f:
            batch = safe_pickle_load(f, encoding="bytes")  # plain data + numpy arrays only, runs no code
    except Exception as exc:  # unpickling raises many types; all mean "unreadable"
        raise DatasetError(
            f"cannot read {layout.name} file {path}: {type(exc).__name__}: {exc}; it is corrupt or truncated, "
            f"{_how_to_get(layout)}"
        ) from exc
    if not isinstance(batch, dict) or b"data" not in batch or layout.label_key not in batch:
        raise DatasetError(
            f"{path} is not a {layout.name} batch (expected a dict with b'data' and {layout.label_key!r}); "
            f"{_how_to_get(layout)}"
        )
    data = _check_data(batch[b"data"], path, layout)
    labels = _check_labels(batch[layout.label_key], data.shape[0], path, layout)
    return data.reshape(-1, 3, IMAGE_SIZE, IMAGE_SIZE), labels


def _check_data(data: object, path: Path, layout: _Layout) -> np.ndarray:
    """b"data" must be a uint8 array [N, 3072] (no lists: converting nested lists could exhaust memory)."""
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072:
        found = (
            f"a {data.dtype} array of shape {list(data.shape)}" if isinstance(data, np.ndarray) else type(data).__name__
        )
        raise DatasetError(f"{path}: b'data' is {found}, expected [N, 3072] uint8 pixel bytes; {_how_to_get(layout)}")
    return data


def _check_labels(labels: object, count: int, path: Path, layout: _Layout) -> np.ndarray:
    """Labels: a list or integer array of exactly ``count`` ints in ``0..K-1`` (no floats, no nesting)."""
    key, k = layout.label_key.decode(), layout.info.num_classes

    def fail(what: str) -> DatasetError:
        return DatasetError(f"{path}: {key} {what}; expected {count} integers in 0..{k - 1}, {_how_to_get(layout)}")

    if isinstance(labels, np.ndarray):
        if labels.dtype.kind not in "iu" or labels.ndim != 1:
            raise fail(f"is a {labels.dtype} array of shape {list(labels.shape)}")
        values = labels.astype(np.int64)
    elif isinstance(labels, list):
        if len(labels) != count:
            raise fail(f"has {len(labels)} entries but b'data' has {count} images")
        bad = next((v for v in labels if type(v) is not int), None)
        if bad is not None:
            raise fail(f"holds {type(bad).__name__} {_short(bad)}")
        if any(v < 0 or v >= k for v in labels):
            raise fail(f"holds {next(v for v in labels if v < 0 or v >= k)}, outside 0..{k - 1}")
        values = np.asarray(labels, dtype=np.int64)
    else:
        raise fail(f"is a {type(labels).__name__}")
    if values.shape[0] != count:
        raise fail(f"has {values.shape[0]} entries but b'data' has {count} images")
    if values.size and (values.min() < 0 or values.max() >= k):
        raise fail(f"holds {int(values.min() if values.min() < 0 else values.max())}, outside 0..{k - 1}")
    return values


def _short(value: object) -> str:
    text = repr(value) if not isinstance(value, list | dict) else f"of length {len(value)}"
    return text if len(text) <= 40 else text[:37] + "..."


@functools.lru_cache(maxsize=4)
def _read_split(name: str, folder: str, split: str) -> tuple[np.ndarray, np.ndarray]:
    """Decoded ``(images [N, 3, 32, 32] uint8, labels [N] int64)``, cached per dataset, folder and split."""
    layout = LAYOUTS[name]
    parts = [_read_batch(layout, Path(folder) / file) for file in layout.files[split]]
    images = np.concatenate([p[0] for p in parts])
    labels = np.concatenate([p[1] for p in parts])
    images.flags.writeable = False
    labels.flags.writeable = False
    return images, labels


def info(name: str, data_dir: str | Path | None = None, image_size: int | None = None) -> DatasetInfo:
    """Metadata of ``"cifar10"`` or ``"cifar100"`` (does not touch the files)."""
    layout = LAYOUTS[name]
    check_image_size(name, image_size, IMAGE_SIZE)
    return layout.info


def load(
    name: str,
    split: str = "train",
    data_dir: str | Path | None = None,
    limit: int | None = None,
    image_size: int | None = None,
) -> TensorDataset:
    """Load one split of ``"cifar10"`` or ``"cifar100"`` as an in-memory TensorDataset."""
    layout = LAYOUTS[name]
    split = check_split(split)
    limit = check_limit(limit)
    check_image_size(name, image_size, IMAGE_SIZE)
    folder = _resolve_folder(layout, data_dir)
    images, labels = _read_split(name, str(folder.resolve()), split)
    return tensor_dataset(images, labels, scale=255.0, limit=limit)
