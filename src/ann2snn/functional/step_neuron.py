"""The StepReLU neuron under membrane-potential encoding, as pure functions (methods.md §4, docs/steprelu.md).

A StepReLU site with step θ_s and n steps becomes a neuron with threshold Θ = n·θ_s that first integrates its
whole input (the potential ``V = Σ_t I(t) = T·Ī``), then fires spikes of amplitude Θ while ``V > Θ`` (ceil rounding,
strict test) or ``V ≥ Θ`` (floor rounding), subtracting Θ per spike, for at most T steps. The spike count is

    k = clamp(ceil(Ī/u) − 1, 0, T)   (ceil)      k = clamp(floor(Ī/u), 0, T)   (floor),   u = Θ/T = n·θ_s/T,

and the time-mean output ``k·u`` is StepReLU with step u on (0, T·u]; at T = n, u = θ_s exactly, so it is the
StepReLU of the ANN. Above the top T·u = Θ the authors' StepReLU is the identity: a neuron that fired at every
step emits its remaining potential as one graded spike at the last step (``clip=False``), or saturates
(``clip=True``, the clip-top variant, pure binary spikes; ceil rounding then caps the count at T − 1).

An optional leak acts in the firing phase (no more input arrives): ``v ← λ·v − δ·Θ`` before each threshold test, so
potential left by weak (e.g. noise-driven) input leaks away instead of producing spikes.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ann2snn.functional.quant import step_relu


def step_unit(step: float, steps: int, timesteps: int) -> float:
    """The output quantum ``u = n·θ_s/T`` of the neuron at T steps; exactly θ_s when T = n."""
    return float(step) if timesteps == steps else float(step) * steps / timesteps


def step_cap(timesteps: int, rounding: str, clip: bool) -> int:
    """Most spikes one neuron emits in T steps: T − 1 for the clipped ceil staircase, else T."""
    return timesteps - 1 if (clip and rounding == "ceil") else timesteps


def step_rate(mean_current: Tensor, unit: float, timesteps: int, rounding: str = "ceil", clip: bool = False) -> Tensor:
    """Time-mean output of the leak-free neuron: :func:`~ann2snn.functional.step_relu` with step u and T steps.

    The very expression of the ANN's activation, so at T = n (u = θ_s) it is bit-identical to the StepReLU ANN. It
    keeps StepReLU's straight-through (ReLU) gradient.

    Shape: any.
    """
    return step_relu(mean_current, unit, timesteps, rounding, clip)


def step_level(mean_current: Tensor, unit: float, timesteps: int, rounding: str = "ceil", clip: bool = False) -> Tensor:
    """Spike count k of the leak-free neuron (float tensor holding integers in [0, cap]), same ops as the ANN.

    Shape: any.
    """
    scaled = mean_current / unit
    level = torch.ceil(scaled) - 1.0 if rounding == "ceil" else torch.floor(scaled)
    return torch.clamp(level, 0, step_cap(timesteps, rounding, clip))


def step_overflow(mean_current: Tensor, unit: float, timesteps: int, clip: bool = False) -> Tensor:
    """Time-mean value of the graded overflow spike: ``Ī − T·u`` above the top (identity region), else 0.

    Zero everywhere when ``clip`` (the clip-top variant has no identity region).
    """
    if clip:
        return torch.zeros_like(mean_current)
    top = timesteps * unit
    return torch.where(mean_current > top, mean_current - top, torch.zeros_like(mean_current))


def leaky_fire(
    potential: Tensor,
    threshold: Tensor | float,
    timesteps: int,
    *,
    leak: float = 1.0,
    leak_delta: float = 0.0,
    rounding: str = "ceil",
    clip: bool = False,
) -> tuple[Tensor, Tensor]:
    """Firing phase of the (leaky) neuron started at ``potential`` V, stepped T times; returns ``(k, residual)``.

    Each step: ``v ← λ·v − δ·Θ``; spike if ``v > Θ`` (ceil) or ``v ≥ Θ`` (floor) while fewer than the cap have been
    emitted; ``v ← v − s·Θ``. Without input the potential only falls, so the spikes are the first k steps (a sorted
    train). ``residual`` is what is left after T steps where the neuron fired at every step and ``clip`` is off
    (the graded overflow, in potential units), else 0. With ``leak = 1, leak_delta = 0`` this equals
    ``k = clamp(ceil(V/Θ) − 1, 0, T)`` up to float round-off of the repeated subtraction at exact boundaries.

    Shape: ``potential`` any; ``threshold`` broadcasts.
    """
    cap = step_cap(timesteps, rounding, clip)
    v = potential
    count = torch.zeros_like(potential)
    for _ in range(timesteps):
        if leak != 1.0:
            v = v * leak
        if leak_delta:
            v = v - leak_delta * threshold
        fire = (v > threshold) if rounding == "ceil" else (v >= threshold)
        fire = (fire & (count < cap)).to(potential.dtype)
        count = count + fire
        v = v - fire * threshold
    if clip:
        return count, torch.zeros_like(potential)
    residual = torch.where(count >= timesteps, torch.clamp(v, min=0.0), torch.zeros_like(v))
    return count, residual
