"""Settings and result of :func:`ann2snn.train.train`: :class:`TrainConfig` and :class:`TrainResult`."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ann2snn.config import _Config, _finite, _positive_int
from ann2snn.errors import ConfigError
from ann2snn.limits import check_int

__all__ = ["TrainConfig", "TrainResult"]

# TrainConfig fields that must be equal to resume (the others may change between runs).
_RESUME_FIELDS = ("epochs", "batch_size", "lr", "momentum", "nesterov", "weight_decay", "label_smoothing", "seed")


@dataclasses.dataclass(frozen=True)
class TrainConfig(_Config):
    """Settings of :func:`train`.

    Attributes:
        epochs: Passes over the training data, in 1..100000.
        batch_size: Samples per step (per process under DDP), in 1..1048576. The last partial batch of an epoch
            is dropped unless the data is smaller than one batch.
        lr: Peak learning rate of SGD; a cosine schedule decays it to 0 over ``epochs`` x steps per epoch.
        momentum: SGD momentum.
        nesterov: Nesterov momentum (needs ``momentum > 0``).
        weight_decay: L2 penalty on weights with 2+ dimensions (not on biases, BatchNorm or thresholds).
        label_smoothing: Label smoothing of the cross-entropy loss, in [0, 1).
        seed: Seeds data order, dropout and everything random in the loop, in 0..2**63-1.
        checkpoint_every: Also write ``last`` every this many steps (1..2**40); ``None``: at each epoch end only.
        device: ``"auto"`` (CUDA when available), ``"cpu"``, ``"cuda"`` or ``"cuda:N"``.
    """

    epochs: int = 10
    batch_size: int = 128
    lr: float = 0.05
    momentum: float = 0.9
    nesterov: bool = True
    weight_decay: float = 5e-4
    label_smoothing: float = 0.0
    seed: int = 0
    checkpoint_every: int | None = None
    device: str = "auto"

    def __post_init__(self) -> None:
        _positive_int("epochs", self.epochs)
        _positive_int("batch_size", self.batch_size)
        _finite("lr", self.lr, 0.0, low_open=True)
        _finite("momentum", self.momentum, 0.0)
        if self.momentum >= 1:
            raise ConfigError(f"momentum={self.momentum!r} must be < 1")
        if not isinstance(self.nesterov, bool):
            raise ConfigError(f"nesterov={self.nesterov!r} must be True or False")
        if self.nesterov and self.momentum == 0:
            raise ConfigError("nesterov=True needs momentum > 0; set nesterov=False or momentum=0.9")
        _finite("weight_decay", self.weight_decay, 0.0)
        _finite("label_smoothing", self.label_smoothing, 0.0)
        if self.label_smoothing >= 1:
            raise ConfigError(f"label_smoothing={self.label_smoothing!r} must be < 1")
        check_int("seed", self.seed)
        if self.checkpoint_every is not None:
            _positive_int("checkpoint_every", self.checkpoint_every)
        if not isinstance(self.device, str):
            raise ConfigError(f"device={self.device!r} must be a string such as 'auto', 'cpu' or 'cuda'")
        if self.device != "auto":
            try:
                torch.device(self.device)
            except (RuntimeError, ValueError, TypeError) as exc:
                raise ConfigError(
                    f"device={self.device!r} is not a device; use 'auto', 'cpu', 'cuda' or 'cuda:N'"
                ) from exc


@dataclasses.dataclass
class TrainResult:
    """What :func:`train` returns.

    Attributes:
        model: The trained copy (in eval mode, on the training device); the input model is untouched.
        history: One dict per finished epoch: ``epoch``, ``loss``, ``train_acc``, ``eval_acc`` (``None``
            without eval data), ``lr`` (at the epoch's last step) and ``seconds``.
        eval_acc: Evaluation accuracy after the last finished epoch (``None`` without eval data).
        train_acc: Running training accuracy of the last finished epoch.
        steps: Optimizer steps taken in total (including those before a resume).
        completed: ``False`` when ``max_steps`` stopped the run early.
        checkpoint: Stem of the checkpoint written last (``out_dir/final`` or ``out_dir/last``), else ``None``.
    """

    model: nn.Module
    history: list[dict[str, Any]]
    eval_acc: float | None
    train_acc: float | None
    steps: int
    completed: bool
    checkpoint: Path | None = None
