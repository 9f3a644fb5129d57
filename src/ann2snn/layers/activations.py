"""Quantization-aware activations: QCFS, ClipReLU, StepReLU (methods.md §1)."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ann2snn import functional as F


def _threshold_tensor(threshold: float | Tensor) -> Tensor:
    return torch.as_tensor(threshold, dtype=torch.get_default_dtype()).clone()


class QCFS(nn.Module):
    """Clip-floor-shift activation with ``levels`` L and a (learnable) threshold θ.

    ``gradient`` picks the straight-through backward rule (:func:`ann2snn.functional.qcfs`): ``"reference"``
    (QCFS's released code, the default) or ``"clamped"``; the forward value is the same.

    Shape: input and output ``[B, ...]``; θ is a scalar (per layer) or broadcasts per channel.
    """

    def __init__(
        self,
        levels: int = 8,
        threshold: float | Tensor = 8.0,
        learn_threshold: bool = True,
        gradient: str = "reference",
    ) -> None:
        super().__init__()
        self.levels = int(levels)
        self.gradient = gradient
        t = _threshold_tensor(threshold)
        if learn_threshold:
            self.threshold = nn.Parameter(t)
        else:
            self.register_buffer("threshold", t)

    def forward(self, x: Tensor) -> Tensor:
        return F.qcfs(x, self.threshold, self.levels, gradient=getattr(self, "gradient", "reference"))

    def extra_repr(self) -> str:
        grad = "" if self.gradient == "reference" else f", gradient={self.gradient!r}"
        return f"levels={self.levels}, threshold={format_threshold(self.threshold)}{grad}"


class ClipReLU(nn.Module):
    """``clamp(x, 0, θ)``; θ a scalar or per channel (``[C, 1, 1]`` for conv features, ``[C]`` for linear)."""

    def __init__(self, threshold: float | Tensor = 8.0, learn_threshold: bool = True) -> None:
        super().__init__()
        t = _threshold_tensor(threshold)
        if learn_threshold:
            self.threshold = nn.Parameter(t)
        else:
            self.register_buffer("threshold", t)

    def forward(self, x: Tensor) -> Tensor:
        return F.clip_relu(x, self.threshold)

    def extra_repr(self) -> str:
        return f"threshold={format_threshold(self.threshold)}"


class StepReLU(nn.Module):
    """StepReLU staircase with step θ_s and ``steps`` n (see :func:`ann2snn.functional.step_relu`)."""

    def __init__(self, step: float = 0.05, steps: int = 20, rounding: str = "ceil", clip: bool = False) -> None:
        super().__init__()
        self.step = float(step)
        self.steps = int(steps)
        self.rounding = rounding
        self.clip = bool(clip)

    def forward(self, x: Tensor) -> Tensor:
        return F.step_relu(x, self.step, self.steps, self.rounding, self.clip)

    def extra_repr(self) -> str:
        return f"step={self.step}, steps={self.steps}, rounding={self.rounding!r}, clip={self.clip}"


def format_threshold(t: Tensor) -> str:
    """Short text for a scalar or per-channel threshold."""
    return f"{t.item():.4g}" if t.numel() == 1 else f"per-channel[{t.numel()}]"
