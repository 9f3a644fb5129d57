"""Test-wide settings: one thread per worker (tests run under pytest-xdist on 2 cores).

Hypothesis: under CI (``CI`` set) examples are derandomized, so a landing run is reproducible; locally each run
explores new examples. ``ANN2SNN_FUZZ_EXAMPLES=2000`` runs the fuzz tests longer.
"""

import os

import pytest
import torch
from hypothesis import settings

torch.set_num_threads(1)
settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")

FASHION_DIR = "/usr/share/datasets/fashion-mnist"


def pytest_collection_modifyitems(config, items):
    if os.path.isdir(FASHION_DIR):
        return
    skip = pytest.mark.skip(reason=f"{FASHION_DIR} missing (apt-get install dataset-fashion-mnist)")
    for item in items:
        if "fashion" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="module")
def benchmark_module():  # type: ignore[no-untyped-def]
    """``benchmark_module(name)`` imports ``benchmarks/<name>.py``; the folder leaves sys.path after the module."""
    import importlib
    import sys
    from pathlib import Path

    folder = str(Path(__file__).resolve().parents[1] / "benchmarks")
    sys.path.insert(0, folder)
    try:
        yield importlib.import_module
    finally:
        sys.path.remove(folder)
