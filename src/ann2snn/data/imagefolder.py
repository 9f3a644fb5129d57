"""ImageNet-style image folders, decoded lazily with Pillow::

    root/train/<class>/*.png|jpg|jpeg
    root/val/<class>/...        (split "test"; a folder named test/ is used when val/ is absent)

Class names are the sorted sub-folder names of ``train/`` (of ``val/`` when there is no ``train/``); labels
follow that order in both splits. Each image is converted to RGB, its shorter side resized to ``image_size``
(bilinear) and the centre ``image_size x image_size`` square cropped.

Shape:
    x: ``[3, S, S]`` float32 in ``[0, 1]`` with S = ``image_size`` (default 224); y: int64 class index.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from ann2snn.data.base import DatasetInfo, check_limit, check_split
from ann2snn.errors import ConfigError, DatasetError

NAME = "imagefolder"
DEFAULT_IMAGE_SIZE = 224
EXTENSIONS = (".png", ".jpg", ".jpeg")
SPLIT_FOLDERS = {"train": ("train",), "test": ("val", "test")}
HOW_TO_GET = (
    "pass --data-dir (data_dir=) pointing at a root folder laid out as root/train/<class>/*.jpg and "
    "root/val/<class>/*.jpg (PNG and JPEG are read)"
)


def _check_root(data_dir: str | Path | None) -> Path:
    if data_dir is None:
        raise DatasetError(f"the imagefolder dataset needs a data_dir; {HOW_TO_GET}")
    root = Path(data_dir)
    if not root.is_dir():
        raise DatasetError(f"image folder root {root} does not exist; {HOW_TO_GET}")
    return root


def _split_folder(root: Path, split: str) -> Path | None:
    for name in SPLIT_FOLDERS[split]:
        if (root / name).is_dir():
            return root / name
    return None


def _class_dirs(folder: Path) -> list[Path]:
    return sorted((p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")), key=lambda p: p.name)


def _classes(root: Path) -> tuple[str, ...]:
    folder = _split_folder(root, "train") or _split_folder(root, "test")
    if folder is None:
        raise DatasetError(f"{root} has none of the split folders train/, val/, test/; {HOW_TO_GET}")
    dirs = _class_dirs(folder)
    if not dirs:
        raise DatasetError(f"{folder} has no class sub-folders; {HOW_TO_GET}")
    for class_dir in dirs:  # an empty folder would silently become a class no sample ever has
        if not any(p.is_file() and p.suffix.lower() in EXTENSIONS for p in class_dir.iterdir()):
            raise DatasetError(
                f"class folder {class_dir} holds no .png/.jpg/.jpeg images, so it would become an extra class "
                "that no sample has; add its images or remove the folder"
            )
    return tuple(p.name for p in dirs)


def _check_size(image_size: int | None) -> int:
    size = DEFAULT_IMAGE_SIZE if image_size is None else image_size
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise ConfigError(f"image_size={image_size!r} must be a positive integer (e.g. image_size=224)")
    return size


MAX_IMAGE_PIXELS = 2**25
"""Largest image decoded (33.5 megapixels, e.g. 8192x4096); larger ones are refused as decompression bombs."""
MAX_ASPECT = 64
"""Most elongated image accepted: resizing the shorter side of a 1 x 10**6 strip would allocate GiBs."""


def _check_pixels(path: str | Path, w: int, h: int) -> None:
    if w * h > MAX_IMAGE_PIXELS:
        raise DatasetError(
            f"image {path} is {w}x{h} = {w * h:,} pixels, more than the {MAX_IMAGE_PIXELS:,} decoded "
            "(a decompression bomb?); shrink or delete the file"
        )
    if min(w, h) < 1 or max(w, h) > MAX_ASPECT * min(w, h):
        raise DatasetError(f"image {path} is {w}x{h}, more elongated than {MAX_ASPECT}:1; crop or delete the file")


def load_image(path: str | Path, image_size: int) -> torch.Tensor:
    """Read one image as RGB, resize its shorter side to ``image_size``, centre-crop; ``[3, S, S]`` in [0, 1]."""
    from PIL import Image, UnidentifiedImageError  # lazy: Pillow is only needed for image folders

    try:
        with warnings.catch_warnings():  # Pillow warns of large images; _check_pixels refuses them itself
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            opened = Image.open(path)  # reads the header only: the size is known before any pixel is decoded
        with opened:
            w, h = opened.size
            _check_pixels(path, w, h)
            img = opened.convert("RGB")
            scale = image_size / min(w, h)
            new_w, new_h = max(image_size, round(w * scale)), max(image_size, round(h * scale))
            img = img.resize((new_w, new_h), Image.Resampling.BILINEAR)
            left, top = (new_w - image_size) // 2, (new_h - image_size) // 2
            img = img.crop((left, top, left + image_size, top + image_size))
            arr = np.asarray(img, dtype=np.float32) / np.float32(255.0)
    except (OSError, UnidentifiedImageError, ValueError, Image.DecompressionBombError) as exc:
        raise DatasetError(f"cannot read image {path}: {exc}; replace or delete the file") from exc
    return torch.from_numpy(arr).permute(2, 0, 1).contiguous()


class ImageFolderDataset(Dataset):
    """Lazy dataset over image files; each ``__getitem__`` decodes one image.

    Attributes:
        samples: ``(path, label)`` pairs, sorted by class then file name.
        classes: Class names in label order.
        image_size: Side S of the returned square images.
    """

    def __init__(self, samples: list[tuple[Path, int]], classes: tuple[str, ...], image_size: int) -> None:
        self.samples = samples
        self.classes = classes
        self.image_size = image_size

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        path, label = self.samples[index]
        return load_image(path, self.image_size), torch.tensor(label, dtype=torch.int64)


def info(data_dir: str | Path | None = None, image_size: int | None = None) -> DatasetInfo:
    """Metadata read from the folder tree (class names from ``train/``)."""
    classes = _classes(_check_root(data_dir))
    size = _check_size(image_size)
    return DatasetInfo(name=NAME, num_classes=len(classes), in_channels=3, image_size=size, class_names=classes)


def load(
    split: str = "train",
    data_dir: str | Path | None = None,
    limit: int | None = None,
    image_size: int | None = None,
) -> ImageFolderDataset:
    """List the images of one split; decoding happens on access."""
    split = check_split(split)
    limit = check_limit(limit)
    size = _check_size(image_size)
    root = _check_root(data_dir)
    classes = _classes(root)
    folder = _split_folder(root, split)
    if folder is None:
        wanted = " or ".join(f"{name}/" for name in SPLIT_FOLDERS[split])
        raise DatasetError(f"{root} has no {wanted} folder for split {split!r}; {HOW_TO_GET}")
    index = {name: i for i, name in enumerate(classes)}
    samples: list[tuple[Path, int]] = []
    for class_dir in _class_dirs(folder):
        if class_dir.name not in index:
            raise DatasetError(
                f"class folder {class_dir} is not among the training classes ({', '.join(classes)}); "
                "every split must use the same class names"
            )
        files = sorted(p for p in class_dir.iterdir() if p.is_file() and p.suffix.lower() in EXTENSIONS)
        samples.extend((p, index[class_dir.name]) for p in files)
    if not samples:
        raise DatasetError(f"no .png/.jpg/.jpeg images under {folder}; {HOW_TO_GET}")
    if limit is not None:
        samples = samples[:limit]
    return ImageFolderDataset(samples, classes, size)
