"""Digits: fixed stratified split, value range, dtypes, determinism, limit."""

from __future__ import annotations

import pytest
import torch
from torch.utils.data import TensorDataset

from ann2snn.data import dataset_info, load_dataset
from ann2snn.errors import ConfigError


def test_split_sizes_and_types():
    train, test = load_dataset("digits", "train"), load_dataset("digits", "test")
    assert isinstance(train, TensorDataset)
    assert (len(train), len(test)) == (1347, 450)
    x, y = train[0]
    assert x.shape == (1, 8, 8) and x.dtype == torch.float32
    assert y.dtype == torch.int64 and y.ndim == 0


def test_values_in_unit_range_and_use_it():
    x = load_dataset("digits", "train").tensors[0]
    assert x.min() == 0.0 and x.max() == 1.0
    assert torch.all(x * 16 == torch.round(x * 16))  # pixel values were 0..16


def test_split_is_stratified_and_disjoint():
    tr, te = load_dataset("digits", "train").tensors, load_dataset("digits", "test").tensors
    total = torch.bincount(tr[1], minlength=10) + torch.bincount(te[1], minlength=10)
    assert (torch.bincount(te[1], minlength=10) - 0.25 * total).abs().max() <= 1  # stratified: 25% per class
    assert set(tr[1].tolist()) == set(range(10))
    train_rows = {tuple(r.tolist()) for r in tr[0].flatten(1)}
    overlap = sum(tuple(r.tolist()) in train_rows for r in te[0].flatten(1))
    assert overlap < 5  # the raw data holds a few duplicate images; the split itself is disjoint


def test_deterministic_and_independent_copies():
    a, b = load_dataset("digits", "test"), load_dataset("digits", "test")
    assert torch.equal(a.tensors[0], b.tensors[0]) and torch.equal(a.tensors[1], b.tensors[1])
    a.tensors[0].add_(1.0)  # mutating one result must not leak into the cache
    assert torch.equal(load_dataset("digits", "test").tensors[0], b.tensors[0])
    assert load_dataset("digits", "test")[0][1].item() == 2


def test_limit_keeps_first_samples():
    full, few = load_dataset("digits", "train"), load_dataset("digits", "train", limit=10)
    assert len(few) == 10 and torch.equal(few.tensors[0], full.tensors[0][:10])
    assert len(load_dataset("digits", "train", limit=10_000)) == 1347


@pytest.mark.parametrize("limit", [0, -1, 2.5, True])
def test_bad_limit(limit):
    with pytest.raises(ConfigError, match="limit"):
        load_dataset("digits", limit=limit)


def test_info():
    info = dataset_info("digits")
    assert (info.name, info.num_classes, info.in_channels, info.image_size) == ("digits", 10, 1, 8)
    assert info.class_names == tuple("0123456789")
    with pytest.raises(ConfigError, match="fixed 8x8"):
        load_dataset("digits", image_size=28)
