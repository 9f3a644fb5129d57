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
import math
import zlib
from pathlib import Path
from typing import BinaryIO, cast

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


MAX_IDX_BYTES = 512 * 2**20
"""Largest IDX payload decoded (the Fashion-MNIST train images hold 47 MB); bounds gzip inflation too."""


def parse_idx(path: str | Path, magic: int) -> np.ndarray:
    """Decode an IDX file of unsigned bytes (gzip if the name ends in ``.gz``) into a read-only uint8 array.

    The header's dimensions are checked before the data is read: their product must not exceed
    :data:`MAX_IDX_BYTES` and must equal the bytes the file holds (for gzip, at most that many bytes are
    inflated, so a small file that inflates to GiBs is refused after reading one byte too many).

    Raises:
        DatasetError: The file cannot be read, is truncated, or has the wrong magic number or sizes.
    """
    path = Path(path)
    ndim = magic & 0xFF
    header_size = 4 + 4 * ndim
    try:
        with _open_idx(path) as handle:
            header = handle.read(header_size)
            dims, size = _check_header(path, header, header_size, magic, ndim)
            if path.suffix != ".gz" and path.stat().st_size != header_size + size:
                _size_mismatch(path, dims, size, path.stat().st_size - header_size)
            raw = handle.read(size + 1)
    except (OSError, EOFError, zlib.error) as exc:
        raise DatasetError(
            f"cannot read IDX file {path}: {exc}; the file is corrupt or truncated, {HOW_TO_GET}"
        ) from exc
    if len(raw) != size:
        _size_mismatch(path, dims, size, len(raw) if len(raw) <= size else f"more than {size}")
    arr = np.frombuffer(raw, dtype=np.uint8).reshape(dims)
    arr.flags.writeable = False
    return arr


def _open_idx(path: Path) -> BinaryIO:
    handle = gzip.open(path, "rb") if path.suffix == ".gz" else path.open("rb")
    return cast(BinaryIO, handle)


def _check_header(path: Path, header: bytes, header_size: int, magic: int, ndim: int) -> tuple[tuple[int, ...], int]:
    if len(header) < header_size:
        raise DatasetError(
            f"IDX file {path} is truncated ({len(header)} bytes, header needs {header_size}); {HOW_TO_GET}"
        )
    found = int.from_bytes(header[:4], "big")
    if found != magic:
        raise DatasetError(
            f"IDX file {path} has magic number 0x{found:08x}, expected 0x{magic:08x}; "
            f"it is not a Fashion-MNIST file of this kind, {HOW_TO_GET}"
        )
    dims = tuple(int.from_bytes(header[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    size = math.prod(dims)  # Python ints: no overflow
    if size > MAX_IDX_BYTES:
        raise DatasetError(
            f"IDX file {path}: header declares dimensions {list(dims)} ({size:,} bytes), more than the "
            f"{MAX_IDX_BYTES:,} allowed; the file is corrupt, {HOW_TO_GET}"
        )
    return dims, size


def _size_mismatch(path: Path, dims: tuple[int, ...], size: int, held: int | str) -> None:
    raise DatasetError(
        f"IDX file {path} is truncated or corrupt: header says {list(dims)} ({size} bytes of data) but it holds "
        f"{held}; {HOW_TO_GET}"
    )


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
