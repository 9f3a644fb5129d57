"""Image folders: lazy loading, resize + centre crop, class order, split aliases, errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import TensorDataset

from ann2snn.data import dataset_info, load_dataset, make_loader
from ann2snn.errors import DatasetError

PIL = pytest.importorskip("PIL.Image")


def _image(path: Path, color: tuple[int, int, int], size: tuple[int, int] = (12, 8)) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    PIL.new("RGB", size, color).save(path)


def make_tree(root: Path, val_name: str = "val") -> None:
    _image(root / "train" / "cat" / "a.png", (255, 0, 0))
    _image(root / "train" / "cat" / "b.jpg", (250, 0, 0))
    _image(root / "train" / "dog" / "c.PNG", (0, 0, 255), size=(6, 10))
    (root / "train" / "dog" / "notes.txt").write_text("not an image")
    _image(root / val_name / "dog" / "d.png", (0, 255, 0))


def test_train_split(tmp_path):
    make_tree(tmp_path)
    ds = load_dataset("imagefolder", "train", data_dir=tmp_path, image_size=4)
    assert not isinstance(ds, TensorDataset) and len(ds) == 3
    assert [label for _, label in ds.samples] == [0, 0, 1] and ds.classes == ("cat", "dog")
    x, y = ds[0]
    assert x.shape == (3, 4, 4) and x.dtype == torch.float32 and y.dtype == torch.int64
    assert torch.allclose(x[0], torch.ones(4, 4)) and x[1:].abs().max() == 0
    x2, y2 = ds[2]  # portrait image: resized to 4 wide, centre-cropped
    assert x2.shape == (3, 4, 4) and y2.item() == 1 and torch.allclose(x2[2], torch.ones(4, 4))
    xb, yb = next(iter(make_loader(ds, batch_size=3, shuffle=False)))
    assert xb.shape == (3, 3, 4, 4) and yb.tolist() == [0, 0, 1]


@pytest.mark.parametrize("val_name", ["val", "test"])
def test_test_split_uses_val_or_test_folder(tmp_path, val_name):
    make_tree(tmp_path, val_name)
    ds = load_dataset("imagefolder", "test", data_dir=tmp_path, image_size=5)
    assert len(ds) == 1 and ds[0][1].item() == 1  # label follows the train class order
    x = ds[0][0]
    assert x.shape == (3, 5, 5) and torch.allclose(x[1], torch.ones(5, 5))


def test_default_size_limit_and_info(tmp_path):
    make_tree(tmp_path)
    ds = load_dataset("imagefolder", "train", data_dir=tmp_path, limit=1)
    assert len(ds) == 1 and ds[0][0].shape == (3, 224, 224)
    info = dataset_info("imagefolder", tmp_path, image_size=64)
    assert (info.num_classes, info.in_channels, info.image_size, info.class_names) == (2, 3, 64, ("cat", "dog"))


def test_errors(tmp_path):
    make_tree(tmp_path)
    _image(tmp_path / "val" / "bird" / "e.png", (1, 2, 3))
    with pytest.raises(DatasetError, match="bird.*not among the training classes"):
        load_dataset("imagefolder", "test", data_dir=tmp_path)
    bad = tmp_path / "train" / "cat" / "z.png"
    bad.write_bytes(b"garbage")
    ds = load_dataset("imagefolder", "train", data_dir=tmp_path)
    with pytest.raises(DatasetError, match="z.png"):
        ds[2]
    empty = tmp_path / "empty"
    (empty / "train" / "cat").mkdir(parents=True)
    with pytest.raises(DatasetError, match="no .png"):
        load_dataset("imagefolder", "train", data_dir=empty)
    (tmp_path / "onlytrain" / "train" / "cat").mkdir(parents=True)
    _image(tmp_path / "onlytrain" / "train" / "cat" / "a.png", (0, 0, 0))
    with pytest.raises(DatasetError, match="val/ or test/"):
        load_dataset("imagefolder", "test", data_dir=tmp_path / "onlytrain")


def test_pixel_values_match_pillow(tmp_path):
    rng = np.random.default_rng(0)
    arr = rng.integers(0, 256, size=(6, 6, 3), dtype=np.uint8)
    (tmp_path / "train" / "a").mkdir(parents=True)
    PIL.fromarray(arr).save(tmp_path / "train" / "a" / "x.png")
    x, _ = load_dataset("imagefolder", "train", data_dir=tmp_path, image_size=6)[0]
    assert torch.equal(x, torch.from_numpy(arr.astype(np.float32) / 255).permute(2, 0, 1))
