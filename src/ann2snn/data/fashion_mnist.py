"""Fashion-MNIST from its four IDX files (gzip-compressed or not); nothing is downloaded.

The default folder is ``/usr/share/datasets/fashion-mnist/``, filled by the Debian package
``dataset-fashion-mnist``; ``data_dir`` overrides it (the folder holding the files, or its parent when the
files sit in a ``fashion-mnist/`` subfolder).

Shape:
    x: ``[1, 28, 28]`` float32 in ``[0, 1]`` (bytes / 255); y: int64 in ``0..9``.
"""

from __future__ import annotations

import functools
import gzip
import zlib
from pathlib import Path

import numpy as np
from torch.utils.data import TensorDataset

from ann2snn.data.base import DatasetInfo, check_image_size, check_limit, check_split, tensor_dataset
from ann2snn.errors import DatasetError

NAME = "fashion_mnist"
IMAGE_SIZE = 28
DEFAULT_DIR = Path("/usr/share/datasets/fashion-mnist")
FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
IMAGES_MAGIC = 0x00000803  # unsigned bytes, 3 dimensions
LABELS_MAGIC = 0x00000801  # unsigned bytes, 1 dimension
CLASS_NAMES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)  # fmt: skip
INFO = DatasetInfo(name=NAME, num_classes=10, in_channels=1, image_size=IMAGE_SIZE, class_names=CLASS_NAMES)

HOW_TO_GET = (
    "install it with `sudo apt-get install dataset-fashion-mnist` (files land in /usr/share/datasets/"
    "fashion-mnist/), or pass --data-dir (data_dir=) pointing at a folder with the four IDX files "
    "train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte "
    "(each optionally .gz)"
)


def _find(folder: Path, stem: str) -> Path | None:
    for candidate in (folder / f"{stem}.gz", folder / stem):
        if candidate.is_file():
            return candidate
    return None


def _resolve_folder(data_dir: str | Path | None) -> Path:
    base = DEFAULT_DIR if data_dir is None else Path(data_dir)
    for folder in (base, base / "fashion-mnist", base / "fashion_mnist"):
        if _find(folder, FILES["train"][0]) or _find(folder, FILES["test"][0]):
            return folder
    return base


def parse_idx(path: str | Path, magic: int) -> np.ndarray:
    """Decode an IDX file of unsigned bytes (gzip if the name ends in ``.gz``) into a read-only uint8 array.

    Raises:
        DatasetError: The file cannot be read, is truncated, or has the wrong magic number or sizes.
    """
    path = Path(path)
    try:
        raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    except (OSError, EOFError, zlib.error) as exc:
        raise DatasetError(
            f"cannot read IDX file {path}: {exc}; the file is corrupt or truncated, {HOW_TO_GET}"
        ) from exc
    ndim = magic & 0xFF
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DatasetError(f"IDX file {path} is truncated ({len(raw)} bytes, header needs {header}); {HOW_TO_GET}")
    found = int.from_bytes(raw[:4], "big")
    if found != magic:
        raise DatasetError(
            f"IDX file {path} has magic number 0x{found:08x}, expected 0x{magic:08x}; "
            f"it is not a Fashion-MNIST file of this kind, {HOW_TO_GET}"
        )
    dims = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    size = int(np.prod(dims, dtype=np.int64))
    if len(raw) - header != size:
        raise DatasetError(
            f"IDX file {path} is truncated or corrupt: header says {dims} ({size} bytes of data) but it holds "
            f"{len(raw) - header}; {HOW_TO_GET}"
        )
    arr = np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(dims)
    arr.flags.writeable = False
    return arr


@functools.lru_cache(maxsize=4)
def _read_split(folder: str, split: str) -> tuple[np.ndarray, np.ndarray]:
    """Decoded ``(images [N, 28, 28] uint8, labels [N] uint8)``, cached per folder and split."""
    image_stem, label_stem = FILES[split]
    image_path, label_path = _find(Path(folder), image_stem), _find(Path(folder), label_stem)
    if image_path is None or label_path is None:
        missing = image_stem if image_path is None else label_stem
        raise DatasetError(f"Fashion-MNIST file {missing}[.gz] not found in {folder}; {HOW_TO_GET}")
    images = parse_idx(image_path, IMAGES_MAGIC)
    labels = parse_idx(label_path, LABELS_MAGIC)
    if images.shape[1:] != (IMAGE_SIZE, IMAGE_SIZE):
        raise DatasetError(f"{image_path} holds {images.shape[1:]} images, expected 28x28; {HOW_TO_GET}")
    if images.shape[0] != labels.shape[0]:
        raise DatasetError(
            f"{image_path} has {images.shape[0]} images but {label_path} has {labels.shape[0]} labels; {HOW_TO_GET}"
        )
    if labels.size and int(labels.max()) >= INFO.num_classes:
        raise DatasetError(f"{label_path} holds label {int(labels.max())} outside 0..9; {HOW_TO_GET}")
    return images, labels


def info(data_dir: str | Path | None = None, image_size: int | None = None) -> DatasetInfo:
    """Metadata of Fashion-MNIST (does not touch the files)."""
    check_image_size(NAME, image_size, IMAGE_SIZE)
    return INFO


def load(
    split: str = "train",
    data_dir: str | Path | None = None,
    limit: int | None = None,
    image_size: int | None = None,
) -> TensorDataset:
    """Load one split as an in-memory TensorDataset (60000 train / 10000 test samples)."""
    split = check_split(split)
    limit = check_limit(limit)
    check_image_size(NAME, image_size, IMAGE_SIZE)
    folder = _resolve_folder(data_dir)
    images, labels = _read_split(str(folder.resolve()), split)
    return tensor_dataset(images[:, None], labels, scale=255.0, limit=limit)
