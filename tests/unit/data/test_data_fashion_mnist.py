"""Fashion-MNIST: IDX parsing on fake files (gzip or raw, corrupt, truncated) and the real Debian files."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest
import torch

from ann2snn.data import fashion_mnist, load_dataset
from ann2snn.errors import DatasetError

REAL_DIR = Path("/usr/share/datasets/fashion-mnist")
HAVE_REAL = all((REAL_DIR / f"{stem}.gz").is_file() for pair in fashion_mnist.FILES.values() for stem in pair)


def _idx(magic: int, arr: np.ndarray) -> bytes:
    header = magic.to_bytes(4, "big") + b"".join(int(d).to_bytes(4, "big") for d in arr.shape)
    return header + arr.astype(np.uint8).tobytes()


def _write_fake(folder: Path, n: int = 5, compress: bool = True, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, size=n, dtype=np.uint8)
    folder.mkdir(parents=True, exist_ok=True)
    for split in ("train", "test"):
        image_stem, label_stem = fashion_mnist.FILES[split]
        for stem, data in ((image_stem, _idx(0x803, images)), (label_stem, _idx(0x801, labels))):
            if compress:
                (folder / f"{stem}.gz").write_bytes(gzip.compress(data))
            else:
                (folder / stem).write_bytes(data)
    return images, labels


@pytest.mark.parametrize("compress", [True, False])
def test_fake_files_roundtrip(tmp_path, compress):
    images, labels = _write_fake(tmp_path, compress=compress)
    ds = load_dataset("fashion_mnist", "test", data_dir=tmp_path)
    x, y = ds.tensors
    assert x.shape == (5, 1, 28, 28) and x.dtype == torch.float32 and y.dtype == torch.int64
    assert torch.equal(x, torch.from_numpy(images[:, None].astype(np.float32) / 255))
    assert y.tolist() == labels.tolist()
    assert len(load_dataset("fashion_mnist", "train", data_dir=tmp_path, limit=2)) == 2


def test_parent_folder_is_accepted(tmp_path):
    _write_fake(tmp_path / "fashion-mnist")
    assert len(load_dataset("fashion_mnist", "train", data_dir=tmp_path)) == 5


def test_truncated_gzip_names_file(tmp_path):
    _write_fake(tmp_path)
    path = tmp_path / "t10k-images-idx3-ubyte.gz"
    path.write_bytes(path.read_bytes()[:-40])
    with pytest.raises(DatasetError, match="t10k-images-idx3-ubyte.gz"):
        load_dataset("fashion_mnist", "test", data_dir=tmp_path)


def test_truncated_raw_names_file(tmp_path):
    _write_fake(tmp_path, compress=False)
    path = tmp_path / "train-labels-idx1-ubyte"
    path.write_bytes(path.read_bytes()[:-1])
    with pytest.raises(DatasetError, match="train-labels-idx1-ubyte.*truncated"):
        load_dataset("fashion_mnist", "train", data_dir=tmp_path)
    path.write_bytes(b"\x00\x00")
    with pytest.raises(DatasetError, match="truncated"):
        load_dataset("fashion_mnist", "train", data_dir=tmp_path)


def test_wrong_magic_and_mismatch(tmp_path):
    _write_fake(tmp_path, compress=False)
    labels = tmp_path / "t10k-labels-idx1-ubyte"
    images = tmp_path / "t10k-images-idx3-ubyte"
    good = labels.read_bytes()
    labels.write_bytes(_idx(0x803, np.zeros((5, 1, 1))))
    with pytest.raises(DatasetError, match="magic number"):
        load_dataset("fashion_mnist", "test", data_dir=tmp_path)
    labels.write_bytes(_idx(0x801, np.zeros(4)))
    with pytest.raises(DatasetError, match="5 images but .* 4 labels"):
        load_dataset("fashion_mnist", "test", data_dir=tmp_path)
    labels.write_bytes(good)
    images.write_bytes(_idx(0x803, np.zeros((5, 8, 8))))
    with pytest.raises(DatasetError, match="expected 28x28"):
        load_dataset("fashion_mnist", "test", data_dir=tmp_path)


def test_one_missing_file_is_named(tmp_path):
    _write_fake(tmp_path)
    (tmp_path / "train-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(DatasetError, match="train-labels-idx1-ubyte.*apt-get install dataset-fashion-mnist"):
        load_dataset("fashion_mnist", "train", data_dir=tmp_path)


@pytest.mark.fashion
@pytest.mark.skipif(not HAVE_REAL, reason="needs the Debian package dataset-fashion-mnist")
def test_real_files():
    test = load_dataset("fashion_mnist", "test")
    x, y = test.tensors
    assert x.shape == (10_000, 1, 28, 28) and y.shape == (10_000,)
    assert 0.0 <= x.min() and x.max() <= 1.0 and x.max() == 1.0
    assert torch.bincount(y).tolist() == [1000] * 10
    train = load_dataset("fashion_mnist", "train", limit=100)
    assert len(train) == 100 and train.tensors[1][:3].tolist() == [9, 0, 0]
