"""load_dataset / dataset_info dispatch, error messages, and make_loader determinism."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from ann2snn.data import DATASETS, DatasetInfo, dataset_info, load_dataset, make_loader
from ann2snn.errors import ConfigError, DatasetError


def test_dataset_names():
    assert DATASETS == ("digits", "fashion_mnist", "cifar10", "cifar100", "imagefolder")


def test_unknown_name_lists_known():
    with pytest.raises(ConfigError, match="known datasets: digits, fashion_mnist, cifar10, cifar100, imagefolder"):
        load_dataset("mnist")
    with pytest.raises(ConfigError, match="known datasets"):
        dataset_info("mnist")


def test_unknown_split():
    with pytest.raises(ConfigError, match="'train', 'test'"):
        load_dataset("digits", split="validation")
    assert len(load_dataset("digits", split="val")) == 450  # alias of test


def test_info_is_frozen_and_checked():
    info = dataset_info("cifar100")
    assert info.num_classes == len(info.class_names) == 100 and len(set(info.class_names)) == 100
    assert dataset_info("cifar10").class_names[0] == "airplane"
    assert dataset_info("fashion_mnist").class_names[-1] == "Ankle boot"
    with pytest.raises(dataclasses.FrozenInstanceError):
        info.num_classes = 3  # type: ignore[misc]
    with pytest.raises(ConfigError):
        DatasetInfo("x", 3, 1, 8, ("a", "b"))


@pytest.mark.parametrize("name", ["cifar10", "cifar100"])
def test_missing_cifar_says_how_to_get(tmp_path, name):
    with pytest.raises(DatasetError, match="--data-dir") as err:
        load_dataset(name, data_dir=tmp_path)
    assert "cs.toronto.edu" in str(err.value) and "never downloads" in str(err.value)


def test_missing_fashion_says_how_to_get(tmp_path):
    with pytest.raises(DatasetError, match="apt-get install dataset-fashion-mnist") as err:
        load_dataset("fashion_mnist", data_dir=tmp_path)
    assert "--data-dir" in str(err.value)


def test_missing_imagefolder_says_how_to_get(tmp_path):
    with pytest.raises(DatasetError, match="--data-dir"):
        load_dataset("imagefolder")
    with pytest.raises(DatasetError, match="does not exist"):
        load_dataset("imagefolder", data_dir=tmp_path / "nope")
    with pytest.raises(DatasetError, match="train/, val/, test/"):
        dataset_info("imagefolder", data_dir=tmp_path)


def _order(loader):
    return torch.cat([y for _, y in loader])


def test_make_loader_is_seeded():
    ds = load_dataset("digits", "test")
    a, b = _order(make_loader(ds, 32, shuffle=True, seed=3)), _order(make_loader(ds, 32, shuffle=True, seed=3))
    c = _order(make_loader(ds, 32, shuffle=True, seed=4))
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert torch.equal(_order(make_loader(ds, 32, shuffle=False)), ds.tensors[1])
    state = torch.get_rng_state()
    _order(make_loader(ds, 32, shuffle=True))
    assert torch.equal(state, torch.get_rng_state())  # global RNG untouched


def test_make_loader_batches():
    ds = load_dataset("digits", "test", limit=70)
    shapes = [tuple(x.shape) for x, _ in make_loader(ds, 32, shuffle=False)]
    assert shapes == [(32, 1, 8, 8), (32, 1, 8, 8), (6, 1, 8, 8)]


@pytest.mark.parametrize("kwargs", [{"batch_size": 0}, {"batch_size": 4, "num_workers": -1}])
def test_make_loader_rejects_bad_values(kwargs):
    kwargs.setdefault("num_workers", 0)
    with pytest.raises(ConfigError):
        make_loader(load_dataset("digits", limit=4), shuffle=False, **kwargs)
