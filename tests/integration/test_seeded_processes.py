"""Seeded models are the same in every process: two fresh interpreters build and train bit-identical weights.

Each interpreter starts with a different (random) state of torch's global RNG, so a model whose initialisation
is not seeded gets different weights in the two processes; ``create_model`` and ``train`` must not depend on it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = """
import hashlib, sys
import torch
import ann2snn as a2s

torch.set_num_threads(1)


def digest(model):
    h = hashlib.sha256()
    for name, value in sorted(model.state_dict().items()):
        h.update(name.encode())
        h.update(value.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


ann = a2s.create_model("cnn", num_classes=10, in_channels=1, image_size=8, hidden=16)
print("init", digest(ann))
qann = a2s.prepare(ann, a2s.QuantConfig(activation="qcfs", levels=4))
data = a2s.load_dataset("digits", "train", limit=192)
config = a2s.TrainConfig(epochs=1, batch_size=64, device="cpu")
print("trained", digest(a2s.train(qann, data, config, progress=False).model))
print("seed 7", digest(a2s.create_model("cnn", num_classes=10, in_channels=1, image_size=8, hidden=16, seed=7)))
"""


def _run() -> dict[str, str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=1800)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return dict(line.rsplit(" ", 1) for line in proc.stdout.splitlines())


@pytest.mark.slow
def test_two_processes_build_and_train_the_same_weights() -> None:
    first, second = _run(), _run()
    assert set(first) == {"init", "trained", "seed 7"}
    assert first == second
    assert first["init"] != first["seed 7"]  # the digest does see the weights
