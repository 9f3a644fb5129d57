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
    if _grad_free(summed_current, threshold, bias):  # same ops, in place on one fresh tensor (no temporaries)
        level = summed_current + bias * timesteps if bias is not None else summed_current / threshold
        if bias is not None:
            level.div_(threshold)
        return level.add_(0.5).floor_().clamp_(0, timesteps)
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
    if _grad_free(mean_current, threshold, bias):  # same ops, in place on one fresh tensor (no temporaries)
        level = (mean_current + bias).mul_(timesteps) if bias is not None else mean_current * timesteps
        return level.div_(threshold).add_(0.5).floor_().clamp_(0, timesteps)
    if bias is not None:
        mean_current = mean_current + bias
    return torch.clamp(torch.floor(mean_current * timesteps / threshold + 0.5), 0, timesteps)


def rate_from_level(level: Tensor, timesteps: int, amplitude: Tensor | float) -> Tensor:
    """Time-mean output ``n/T·a`` of a neuron that fired ``n`` spikes of amplitude ``a``.

    Same operation order as :func:`ann2snn.functional.qcfs` (so rate mode at T = L is bit-identical to QCFS).
    """
    if _grad_free(level, amplitude):
        return (level / timesteps).mul_(amplitude)
    return level / timesteps * amplitude


def spikes_from_level(
    level: Tensor, timesteps: int, order: str = "front", *, amplitude: Tensor | float | None = None
) -> Tensor:
    """Sorted spike train ``[T, ...]`` with ``level`` spikes per neuron, 0/1 or of height ``amplitude``.

    ``order="front"``: spikes first (``s_t = [t ≤ n]``, t = 1..T); ``"back"``: spikes last (``[t > T − n]``).
    One comparison written straight into the float output, then one in-place scaling (no bool temporary).

    Shape: ``level`` ``[...]`` → ``[T, ...]``; ``amplitude`` broadcasts against ``level``.
    """
    steps = torch.arange(1, timesteps + 1, device=level.device, dtype=level.dtype)
    steps = steps.view((timesteps,) + (1,) * level.dim())
    out = torch.empty((timesteps,) + level.shape, device=level.device, dtype=level.dtype)
    if order == "front":
        torch.ge(level.unsqueeze(0), steps, out=out)  # n ≥ t
    else:
        torch.gt(level.unsqueeze(0), timesteps - steps, out=out)  # n > T − t
    if amplitude is None:
        return out
    if _grad_free(amplitude):
        return out.mul_(amplitude)
    return out * amplitude


def _grad_free(*args: object) -> bool:
    """Whether in-place arithmetic on a fresh result is safe: no argument is part of an autograd graph."""
    return not torch.is_grad_enabled() or not any(isinstance(a, Tensor) and a.requires_grad for a in args)
