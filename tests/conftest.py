"""Test-wide settings: one thread per worker (tests run under pytest-xdist on 2 cores)."""

import os

import pytest
import torch

torch.set_num_threads(1)

FASHION_DIR = "/usr/share/datasets/fashion-mnist"


def pytest_collection_modifyitems(config, items):
    if os.path.isdir(FASHION_DIR):
        return
    skip = pytest.mark.skip(reason=f"{FASHION_DIR} missing (apt-get install dataset-fashion-mnist)")
    for item in items:
        if "fashion" in item.keywords:
            item.add_marker(skip)
