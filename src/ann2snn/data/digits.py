"""The 8x8 handwritten digits that ship with scikit-learn (1797 images, 10 classes; offline).

Shape:
    x: ``[1, 8, 8]`` float32 in ``[0, 1]`` (pixel values 0..16 divided by 16); y: int64 in ``0..9``.

The train/test split is fixed: ``train_test_split(test_size=0.25, random_state=0, stratify=y)``, i.e. 1347 train
and 450 test samples, the same on every machine.
"""

from __future__ import annotations

import functools

import numpy as np
from torch.utils.data import TensorDataset

from ann2snn.data.base import DatasetInfo, check_image_size, check_limit, check_split, tensor_dataset

NAME = "digits"
IMAGE_SIZE = 8
INFO = DatasetInfo(
    name=NAME,
    num_classes=10,
    in_channels=1,
    image_size=IMAGE_SIZE,
    class_names=tuple(str(i) for i in range(10)),
)


@functools.lru_cache(maxsize=1)
def _splits() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    bunch = load_digits()
    images = bunch.images.astype(np.float32)[:, None, :, :]  # [N, 1, 8, 8], values 0..16
    labels = bunch.target.astype(np.int64)
    idx_train, idx_test = train_test_split(np.arange(len(labels)), test_size=0.25, random_state=0, stratify=labels)
    out = {"train": (images[idx_train], labels[idx_train]), "test": (images[idx_test], labels[idx_test])}
    for arr, lab in out.values():
        arr.flags.writeable = False
        lab.flags.writeable = False
    return out


def info(data_dir: object = None, image_size: int | None = None) -> DatasetInfo:
    """Metadata of the digits dataset (``data_dir`` is ignored: the data ships with scikit-learn)."""
    check_image_size(NAME, image_size, IMAGE_SIZE)
    return INFO


def load(
    split: str = "train", data_dir: object = None, limit: int | None = None, image_size: int | None = None
) -> TensorDataset:
    """Load one split of the digits as an in-memory TensorDataset (``data_dir`` is ignored)."""
    split = check_split(split)
    limit = check_limit(limit)
    check_image_size(NAME, image_size, IMAGE_SIZE)
    images, labels = _splits()[split]
    return tensor_dataset(images, labels, scale=16.0, limit=limit)
