"""CIFAR-10/100 from tiny fake folders in the official python-pickle layout."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import TensorDataset

from ann2snn.data import dataset_info, load_dataset
from ann2snn.errors import ConfigError, DatasetError


def _batch(n: int, label_key: bytes, num_classes: int, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    return {
        b"batch_label": b"fake",
        b"data": rng.integers(0, 256, size=(n, 3072), dtype=np.uint8),
        label_key: rng.integers(0, num_classes, size=n).tolist(),
    }


def _dump(path: Path, obj: dict) -> None:
    path.write_bytes(pickle.dumps(obj, protocol=2))


def fake_cifar10(root: Path) -> dict[str, dict]:
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    batches = {f"data_batch_{i}": _batch(3, b"labels", 10, seed=i) for i in range(1, 6)}
    batches["test_batch"] = _batch(4, b"labels", 10, seed=9)
    for name, batch in batches.items():
        _dump(folder / name, batch)
    return batches


def fake_cifar100(root: Path) -> dict[str, dict]:
    folder = root / "cifar-100-python"
    folder.mkdir(parents=True)
    batches = {"train": _batch(6, b"fine_labels", 100, 1), "test": _batch(2, b"fine_labels", 100, 2)}
    for name, batch in batches.items():
        batch[b"coarse_labels"] = [0] * len(batch[b"fine_labels"])
        _dump(folder / name, batch)
    return batches


def test_cifar10_train_concatenates_batches(tmp_path):
    batches = fake_cifar10(tmp_path)
    ds = load_dataset("cifar10", "train", data_dir=tmp_path)
    assert isinstance(ds, TensorDataset) and len(ds) == 15
    x, y = ds.tensors
    assert x.shape == (15, 3, 32, 32) and x.dtype == torch.float32 and y.dtype == torch.int64
    first = batches["data_batch_1"][b"data"][0].reshape(3, 32, 32).astype(np.float32) / 255
    assert torch.equal(x[0], torch.from_numpy(first))
    expected = sum((batches[f"data_batch_{i}"][b"labels"] for i in range(1, 6)), [])
    assert y.tolist() == expected


def test_cifar10_test_and_folder_itself(tmp_path):
    batches = fake_cifar10(tmp_path)
    ds = load_dataset("cifar10", "test", data_dir=tmp_path / "cifar-10-batches-py", limit=3)
    assert len(ds) == 3 and ds.tensors[1].tolist() == batches["test_batch"][b"labels"][:3]
    assert 0.0 <= ds.tensors[0].min() and ds.tensors[0].max() <= 1.0


def test_cifar100_fine_labels(tmp_path):
    batches = fake_cifar100(tmp_path)
    train, test = load_dataset("cifar100", "train", tmp_path), load_dataset("cifar100", "test", tmp_path)
    assert (len(train), len(test)) == (6, 2)
    assert train.tensors[1].tolist() == batches["train"][b"fine_labels"]
    assert dataset_info("cifar100", tmp_path).num_classes == 100


def test_env_var_default_root(tmp_path, monkeypatch):
    fake_cifar10(tmp_path)
    monkeypatch.setenv("ANN2SNN_DATA_DIR", str(tmp_path))
    assert len(load_dataset("cifar10", "test")) == 4


def test_missing_batch_is_named(tmp_path):
    fake_cifar10(tmp_path)
    (tmp_path / "cifar-10-batches-py" / "data_batch_4").unlink()
    with pytest.raises(DatasetError, match="data_batch_4 is missing.*cifar-10-python.tar.gz"):
        load_dataset("cifar10", "train", data_dir=tmp_path)


def test_corrupt_and_malformed_batches(tmp_path):
    fake_cifar10(tmp_path)
    path = tmp_path / "cifar-10-batches-py" / "test_batch"
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(DatasetError, match="cannot read cifar10 file .*test_batch"):
        load_dataset("cifar10", "test", data_dir=tmp_path)
    _dump(path, {b"data": np.zeros((2, 100), dtype=np.uint8), b"labels": [0, 1]})
    with pytest.raises(DatasetError, match="expected \\[N, 3072\\]"):
        load_dataset("cifar10", "test", data_dir=tmp_path)
    _dump(path, {b"data": np.zeros((1, 3072), dtype=np.uint8), b"fine_labels": [0]})
    with pytest.raises(DatasetError, match="not a cifar10 batch"):
        load_dataset("cifar10", "test", data_dir=tmp_path)
    _dump(path, {b"data": np.zeros((1, 3072), dtype=np.uint8), b"labels": [10]})
    with pytest.raises(DatasetError, match="outside 0..9"):
        load_dataset("cifar10", "test", data_dir=tmp_path)


def test_fixed_image_size(tmp_path):
    with pytest.raises(ConfigError, match="fixed 32x32"):
        load_dataset("cifar10", data_dir=tmp_path, image_size=64)
