"""Shared pieces of the dataset loaders: :class:`DatasetInfo`, argument checks and :func:`make_loader`.

Every loader returns samples ``(x, y)`` with ``x`` a float32 image ``[C, H, W]`` in ``[0, 1]`` (no mean/std
normalization, so that robustness noise is applied in pixel space) and ``y`` an int64 class index.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, TensorDataset

from ann2snn.errors import ConfigError
from ann2snn.limits import check_int

SPLITS = ("train", "test")
DATA_DIR_ENV = "ANN2SNN_DATA_DIR"


@dataclasses.dataclass(frozen=True)
class DatasetInfo:
    """What a model needs to know about a dataset.

    Attributes:
        name: Registry name, e.g. ``"digits"``.
        num_classes: Number of classes K; labels are ``0 .. K-1``.
        in_channels: Image channels C.
        image_size: Side of the square image (H = W).
        class_names: K human-readable class names, in label order.
    """

    name: str
    num_classes: int
    in_channels: int
    image_size: int
    class_names: tuple[str, ...]

    def __post_init__(self) -> None:
        if len(self.class_names) != self.num_classes:
            raise ConfigError(
                f"DatasetInfo({self.name!r}): {len(self.class_names)} class names for {self.num_classes} classes"
            )


def check_split(split: str) -> str:
    """Return the canonical split name; ``"val"`` is accepted as an alias of ``"test"``."""
    if split == "val":
        return "test"
    if split not in SPLITS:
        raise ConfigError(f"split={split!r} is not supported; choose one of {', '.join(map(repr, SPLITS))}")
    return split


def check_limit(limit: int | None) -> int | None:
    """Validate ``limit`` (``None`` keeps every sample, ``N`` in 1..2**40 keeps the first N)."""
    return check_int("limit", limit, none_ok=True)  # type: ignore[no-any-return]


def check_image_size(name: str, image_size: int | None, native: int) -> None:
    """Fixed-size datasets accept ``image_size`` only when it equals their native size."""
    if image_size is not None and image_size != native:
        raise ConfigError(
            f"dataset {name!r} has fixed {native}x{native} images; image_size={image_size!r} is not supported "
            "(leave it unset)"
        )


def default_data_root() -> Path:
    """Root folder searched for on-disk datasets: ``$ANN2SNN_DATA_DIR`` if set, else ``./data``."""
    return Path(os.environ.get(DATA_DIR_ENV, "data"))


def tensor_dataset(images: np.ndarray, labels: np.ndarray, scale: float, limit: int | None) -> TensorDataset:
    """Build an in-memory dataset from uint8/float images ``[N, C, H, W]`` and integer labels ``[N]``.

    The arrays are copied, so cached inputs are never aliased by the returned tensors.
    """
    if limit is not None:
        images, labels = images[:limit], labels[:limit]
    x = torch.from_numpy(np.asarray(images, dtype=np.float32) / np.float32(scale))
    y = torch.from_numpy(np.asarray(labels, dtype=np.int64).copy())
    assert x.ndim == 4 and y.shape == (x.shape[0],), (x.shape, y.shape)
    return TensorDataset(x.contiguous(), y)


def make_loader(
    dataset: Dataset,
    batch_size: int,
    shuffle: bool,
    seed: int = 0,
    num_workers: int = 0,
) -> DataLoader:
    """A DataLoader with a seeded generator: the same ``seed`` gives the same batch order.

    Args:
        dataset: Any map-style dataset, e.g. from :func:`ann2snn.data.load_dataset`.
        batch_size: Samples per batch (the last batch may be smaller), in 1..1048576.
        shuffle: Reshuffle every epoch (deterministically, from ``seed``).
        seed: Seed of the loader's own ``torch.Generator`` (0..2**63-1); global RNG state is neither read nor changed.
        num_workers: Worker processes (0..1024; 0 loads in the main process).
    """
    check_int("batch_size", batch_size)
    check_int("num_workers", num_workers)
    check_int("seed", seed)
    generator = torch.Generator()
    generator.manual_seed(int(seed))
    return DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=bool(shuffle),
        generator=generator,
        num_workers=num_workers,
        persistent_workers=False,
    )


__all__ = [
    "DATA_DIR_ENV",
    "SPLITS",
    "DatasetInfo",
    "check_image_size",
    "check_limit",
    "check_split",
    "default_data_root",
    "make_loader",
    "tensor_dataset",
]
