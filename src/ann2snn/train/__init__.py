"""Quantization-aware training loop: seeded, resumable, atomic checkpoints, torchrun/DDP aware.

:func:`train` trains a deep copy of the given model with SGD (Nesterov momentum, weight decay on weight matrices
and kernels only, not on biases, BatchNorm or thresholds) and a per-step cosine learning-rate schedule. The data
order of epoch ``e`` comes from a generator seeded by ``(seed, e)`` and the global RNG (dropout) is seeded from
``seed`` inside a forked RNG scope, so the same seed gives bitwise identical weights on CPU and a run resumed from
its ``last`` checkpoint ends with the same weights as an uninterrupted one.

Example:
    >>> import torch
    >>> from torch import nn
    >>> from torch.utils.data import TensorDataset
    >>> data = TensorDataset(torch.randn(64, 4), torch.randint(0, 3, (64,)))
    >>> result = train(nn.Linear(4, 3), data, TrainConfig(epochs=2, batch_size=16), progress=False)
    >>> [row["epoch"] for row in result.history]
    [1, 2]
"""

from __future__ import annotations

from ann2snn.train.config import TrainConfig, TrainResult
from ann2snn.train.data import evaluate_accuracy
from ann2snn.train.distributed import _Dist as _Dist  # not public; the tests use it
from ann2snn.train.distributed import resolve_device
from ann2snn.train.loop import FINAL as FINAL
from ann2snn.train.loop import LAST as LAST
from ann2snn.train.loop import PREVIOUS as PREVIOUS
from ann2snn.train.loop import train

__all__ = ["TrainConfig", "TrainResult", "evaluate_accuracy", "resolve_device", "train"]
