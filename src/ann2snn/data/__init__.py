"""Datasets as ``(x, y)`` pairs: ``x`` float32 ``[C, H, W]`` in ``[0, 1]``, ``y`` an int64 class index.

Nothing here downloads. ``digits`` ships with scikit-learn; ``fashion_mnist`` reads the Debian package
``dataset-fashion-mnist``; ``cifar10``/``cifar100`` read the official python-pickle layout; ``imagefolder``
reads ``root/{train,val}/<class>/*.jpg``. A missing dataset raises :class:`~ann2snn.errors.DatasetError` saying
how to get it.

Example:
    >>> from ann2snn.data import load_dataset, make_loader
    >>> ds = load_dataset("digits", split="test", limit=64)
    >>> x, y = ds[0]
    >>> tuple(x.shape), x.dtype
    ((1, 8, 8), torch.float32)
    >>> xb, yb = next(iter(make_loader(ds, batch_size=32, shuffle=True, seed=0)))
    >>> tuple(xb.shape)
    (32, 1, 8, 8)
"""

from __future__ import annotations

from pathlib import Path

from torch.utils.data import Dataset

from ann2snn.data import cifar, digits, fashion_mnist, imagefolder
from ann2snn.data.base import DatasetInfo, check_split, make_loader
from ann2snn.errors import ConfigError

DATASETS = ("digits", "fashion_mnist", "cifar10", "cifar100", "imagefolder")


def _check_name(name: str) -> str:
    if name not in DATASETS:
        raise ConfigError(f"unknown dataset {name!r}; known datasets: {', '.join(DATASETS)}")
    return name


def load_dataset(
    name: str,
    split: str = "train",
    data_dir: str | Path | None = None,
    limit: int | None = None,
    *,
    image_size: int | None = None,
) -> Dataset:
    """Load one split of a dataset.

    Args:
        name: One of :data:`DATASETS`.
        split: ``"train"`` or ``"test"`` (``"val"`` is an alias of ``"test"``).
        data_dir: Folder holding the files (meaning per dataset; ignored by ``digits``).
        limit: Keep only the first ``limit`` samples (fast tests); ``None`` keeps all.
        image_size: Side of the square images; only ``imagefolder`` resizes (default 224), the other datasets
            accept only their native size.

    Returns:
        A map-style dataset of ``(x, y)``; a ``TensorDataset`` for the in-memory datasets.

    Shape:
        x: ``[C, H, W]`` float32 in ``[0, 1]``; y: int64 scalar tensor.

    Raises:
        ConfigError: Unknown name, split or limit.
        DatasetError: Files missing or unreadable; the message says how to get them.
    """
    name = _check_name(name)
    if name in cifar.LAYOUTS:
        dataset = cifar.load(name, split, data_dir, limit, image_size)
    else:
        module = {"digits": digits, "fashion_mnist": fashion_mnist, "imagefolder": imagefolder}[name]
        dataset = module.load(split, data_dir, limit, image_size)
    # named for reports (ann2snn.evaluate reads it from loader.dataset)
    dataset.ann2snn_source = {"dataset": name, "split": check_split(split), "limit": limit}  # type: ignore[attr-defined]
    return dataset


def dataset_info(name: str, data_dir: str | Path | None = None, *, image_size: int | None = None) -> DatasetInfo:
    """Metadata of a dataset (``imagefolder`` reads its class names from ``data_dir``; others touch no files)."""
    name = _check_name(name)
    if name in cifar.LAYOUTS:
        return cifar.info(name, data_dir, image_size)
    module = {"digits": digits, "fashion_mnist": fashion_mnist, "imagefolder": imagefolder}[name]
    return module.info(data_dir, image_size)


__all__ = ["DATASETS", "DatasetInfo", "dataset_info", "load_dataset", "make_loader"]
