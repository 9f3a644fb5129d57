"""Neuron update rules as pure functions (methods.md §2, §3).

Serial neurons take one step at a time; the parallel IF neuron takes all T input currents at once, computes one
integer level ``n`` per neuron and emits a sorted (thermometer) spike train of n spikes.
"""

from __future__ import annotations

import torch
from torch import Tensor


def if_step(
    v: Tensor,
    current: Tensor,
    threshold: Tensor | float,
    *,
    leak: float = 1.0,
    leak_delta: float = 0.0,
    reset: str = "subtract",
) -> tuple[Tensor, Tensor]:
    """One step of an integrate-and-fire neuron; returns ``(spikes, v_next)``.

    ``v ← leak·v − leak_delta·θ + I``; spike ``s = [v ≥ θ]`` (0/1 float); then reset by subtraction
    (``v ← v − s·θ``) or to zero (``v ← v·(1 − s)``). ``leak = 1, leak_delta = 0`` is the IF neuron; ``leak < 1`` the
    exponential-leak LIF neuron, ``leak_delta > 0`` the linear-leak neuron.

    Shape: ``v`` and ``current`` ``[B, ...]``; ``threshold`` broadcasts.
    """
    v = v * leak + current if leak != 1.0 else v + current
    if leak_delta:
        v = v - leak_delta * threshold
    spikes = (v >= threshold).to(current.dtype)
    if reset == "subtract":
        v = v - spikes * threshold
    else:
        v = v * (1.0 - spikes)
    return spikes, v


def parallel_if_level(
    summed_current: Tensor,
    timesteps: int,
    threshold: Tensor | float,
    *,
    bias: Tensor | float | None = None,
) -> Tensor:
    """Spike count ``n = clamp(floor((Σ_t I(t) + T·b)/θ + 1/2), 0, T)`` of a parallel IF neuron.

    ``summed_current`` is the sum over the T steps (``T·Ī``); ``bias`` is the per-channel pre-activation
    correction ψ_DA of distribution-aware calibration (0 without calibration). The shift ψ = θ/2 is the
    ``+ 1/2``. Returns a float tensor holding integers in [0, T].
    """
    if bias is not None:
        summed_current = summed_current + bias * timesteps
    return torch.clamp(torch.floor(summed_current / threshold + 0.5), 0, timesteps)


def rate_level(
    mean_current: Tensor, timesteps: int, threshold: Tensor | float, *, bias: Tensor | float | None = None
) -> Tensor:
    """The same level as :func:`parallel_if_level`, from the time-mean current Ī (rate mode).

    Written as ``floor((Ī + b)·T/θ + 1/2)``, the very expression of :func:`ann2snn.functional.qcfs_level`, so rate
    mode at T = L is bit-identical to the QCFS ANN.
    """
    if bias is not None:
        mean_current = mean_current + bias
    return torch.clamp(torch.floor(mean_current * timesteps / threshold + 0.5), 0, timesteps)


def rate_from_level(level: Tensor, timesteps: int, amplitude: Tensor | float) -> Tensor:
    """Time-mean output ``n·a/T`` of a neuron that fired ``n`` spikes of amplitude ``a``."""
    return level * amplitude / timesteps


def spikes_from_level(level: Tensor, timesteps: int, order: str = "front") -> Tensor:
    """Sorted 0/1 spike train ``[T, ...]`` with ``level`` spikes per neuron.

    ``order="front"``: spikes first (``s_t = [t ≤ n]``, t = 1..T); ``"back"``: spikes last (``[t > T − n]``).
    """
    steps = torch.arange(1, timesteps + 1, device=level.device, dtype=level.dtype)
    steps = steps.view((timesteps,) + (1,) * level.dim())
    if order == "front":
        return (steps <= level.unsqueeze(0)).to(level.dtype)
    return (steps > timesteps - level.unsqueeze(0)).to(level.dtype)
