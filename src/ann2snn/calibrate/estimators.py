"""Estimators of the DA calibration parameters ψ_DA (pre-activation bias) and φ_DA (amplitude correction).

Pure functions over per-channel statistics (methods.md §3):

- :func:`ema_update`: the paper's rule ``est ← α·est + (1 − α)·value`` from 0 (needs ~1/(1 − α) batches).
- :func:`mean_update`: the plain running mean of the per-batch values (unbiased after one batch).
- :func:`match_output_mean`: exact output-mean matching: a per-channel bisection over ψ on recorded
  pre-activations, then φ so that the calibrated channel's output mean equals the reference's.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ann2snn import functional as F


def ema_update(estimate: Tensor, value: Tensor, alpha: float) -> Tensor:
    """``α·estimate + (1 − α)·value`` (the distribution-aware calibration rule, α = 0.99 in the paper)."""
    return alpha * estimate + (1.0 - alpha) * value


def mean_update(estimate: Tensor, value: Tensor, count: int) -> Tensor:
    """Running mean after the ``count``-th value (``count`` ≥ 1): ``estimate + (value − estimate)/count``."""
    return estimate + (value - estimate) / count


def mean_output(samples: Tensor, bias: Tensor, threshold: Tensor, timesteps: int) -> Tensor:
    """Per-row mean of ``θ/T·level`` of a parallel neuron with pre-activation bias ``bias``.

    Shape: ``samples`` ``[C, N]``, ``bias`` and ``threshold`` ``[C]`` → ``[C]``.
    """
    level = F.rate_level(samples, timesteps, threshold.unsqueeze(1), bias=bias.unsqueeze(1))
    return level.mean(dim=1) * threshold / timesteps


def _first_at_least(samples: Tensor, target: Tensor, threshold: Tensor, timesteps: int, iters: int) -> Tensor:
    """Per row, the smallest ψ in [−θ, θ] (to bisection precision) with ``mean_output(ψ) ≥ target``."""
    lo, hi = -threshold.clone(), threshold.clone()
    for _ in range(iters):
        mid = (lo + hi) / 2
        ok = mean_output(samples, mid, threshold, timesteps) >= target
        hi = torch.where(ok, mid, hi)
        lo = torch.where(ok, lo, mid)
    low_ok = mean_output(samples, -threshold, threshold, timesteps) >= target
    return torch.where(low_ok, -threshold, hi)


def _last_at_most(samples: Tensor, target: Tensor, threshold: Tensor, timesteps: int, iters: int) -> Tensor:
    """Per row, the largest ψ in [−θ, θ] (to bisection precision) with ``mean_output(ψ) ≤ target``."""
    lo, hi = -threshold.clone(), threshold.clone()
    for _ in range(iters):
        mid = (lo + hi) / 2
        ok = mean_output(samples, mid, threshold, timesteps) <= target
        lo = torch.where(ok, mid, lo)
        hi = torch.where(ok, hi, mid)
    high_ok = mean_output(samples, threshold, threshold, timesteps) <= target
    return torch.where(high_ok, threshold, lo)


def match_output_mean(
    samples: Tensor,
    target: Tensor,
    threshold: Tensor,
    timesteps: int,
    *,
    prior: Tensor | None = None,
    iters: int = 40,
    max_correction: float = 1.0,
) -> tuple[Tensor, Tensor]:
    """ψ_DA and φ_DA per channel so the calibrated output mean equals ``target`` on ``samples``.

    The output mean ``m(ψ) = mean(θ/T·level(z + ψ))`` is a non-decreasing step function of ψ. ψ is the point where
    ``m`` crosses ``target`` (where ``m = target`` on a whole interval, the ``prior``, e.g. the mean pre-activation
    gap, clamped to that interval); φ then removes the remaining step: ``(θ + φ)·mean(level)/T = target``, limited
    to ``|φ| ≤ max_correction·θ`` (the limit only binds for channels that can hardly fire). ψ is searched in
    [−θ, θ]. Computed in ``samples.dtype`` with the neuron's own level expression, so the equality is exact up to
    float round-off when the neuron runs in that dtype.

    Args:
        samples: calibrated-branch pre-activations ``[C, N]``.
        target: reference output means ``[C]``.
        threshold: θ per channel ``[C]``.
        timesteps: T.
        prior: preferred ψ ``[C]`` inside a flat region (default 0).
        iters: bisection steps (the bracket shrinks by 2^iters).
        max_correction: bound on ``|φ|/θ``.

    Returns:
        ``(psi, phi)``, each ``[C]`` in ``samples.dtype``.

    Shape:
        ``samples`` ``[C, N]``; ``target``, ``threshold``, ``prior`` ``[C]``.
    """
    dtype = samples.dtype
    work = samples.to(torch.float64)
    theta = threshold.to(torch.float64)
    tgt = target.to(torch.float64)
    first = _first_at_least(work, tgt, theta, timesteps, iters)
    last = _last_at_most(work, tgt, theta, timesteps, iters)
    prior = torch.zeros_like(tgt) if prior is None else prior.to(torch.float64)
    flat = last > first
    psi = torch.where(flat, torch.minimum(torch.maximum(prior, first), last), first).to(dtype)
    # φ from the levels the neuron will really produce (its dtype, its expression).
    th = threshold.to(dtype)
    level = F.rate_level(samples, timesteps, th.unsqueeze(1), bias=psi.unsqueeze(1)).mean(dim=1)
    amplitude = target.to(dtype) * timesteps / level.clamp_min(torch.finfo(dtype).tiny)
    phi = torch.where(level > 0, amplitude - th, torch.zeros_like(th))
    phi = torch.maximum(torch.minimum(phi, max_correction * th), -max_correction * th)
    return psi, phi


def match_output_mse(
    samples: Tensor,
    reference: Tensor,
    target: Tensor,
    threshold: Tensor,
    timesteps: int,
    *,
    scales: tuple[float, ...] = (1.0,),
    grid: int = 32,
    max_correction: float = 1.0,
) -> tuple[Tensor, Tensor, Tensor]:
    """Threshold, ψ_DA and φ_DA per channel: output mean equal to ``target``, and among such, least MSE.

    For every candidate threshold ``s·θ`` (``s`` in ``scales``) and ψ (a grid over [−sθ/2, sθ/2], then a finer grid
    around the best) the amplitude is set by mean matching, ``θ' + φ = target·T/mean(level)``; among the pairs
    whose mean can be matched with ``|φ| ≤ max_correction·θ'``, the one whose output has the least squared error
    against the paired reference activations wins (if none can: θ kept, ψ = 0, φ clipped). Exact mean as
    :func:`match_output_mean`, and a better shape where the SNN's T levels must imitate a finer reference (QCFS at
    L > T, ClipReLU). ``scales=(1.0,)`` keeps the thresholds.

    Returns:
        ``(threshold, psi, phi)``, each ``[C]``.

    Shape:
        ``samples`` and ``reference`` ``[C, N]`` (paired values); ``target``, ``threshold`` ``[C]``.
    """
    dtype = samples.dtype
    tgt = target.to(dtype)
    ref = reference.to(dtype)
    tiny = torch.finfo(dtype).tiny

    def evaluate(theta: Tensor, psi: Tensor) -> tuple[Tensor, Tensor]:
        level = F.rate_level(samples, timesteps, theta.unsqueeze(1), bias=psi.unsqueeze(1))
        mean_level = level.mean(dim=1)
        exact = torch.where(mean_level > 0, tgt * timesteps / mean_level.clamp_min(tiny), theta)
        amp = torch.minimum(torch.maximum(exact, (1 - max_correction) * theta), (1 + max_correction) * theta)
        err = (level * (amp / timesteps).unsqueeze(1) - ref).pow(2).mean(dim=1)
        feasible = (amp == exact) & ((mean_level > 0) | (tgt == 0))  # the mean can be matched within the bound
        return torch.where(feasible, err, torch.full_like(err, float("inf"))), amp

    base = threshold.to(dtype)
    best_err = torch.full_like(base, float("inf"))
    best_theta, best_psi = base.clone(), torch.zeros_like(base)

    def consider(theta: Tensor, psi: Tensor) -> None:
        nonlocal best_err, best_theta, best_psi
        err, _ = evaluate(theta, psi)
        better = err < best_err
        best_theta = torch.where(better, theta, best_theta)
        best_psi = torch.where(better, psi, best_psi)
        best_err = torch.where(better, err, best_err)

    fractions = torch.linspace(-0.5, 0.5, grid + 1, dtype=dtype, device=base.device)
    for s in scales:
        for f in fractions:
            consider(base * s, base * s * f)
    step = best_theta / grid
    for f in torch.linspace(-1, 1, 17, dtype=dtype, device=base.device):
        consider(best_theta, best_psi + f * step)
    _, amp = evaluate(best_theta, best_psi)
    return best_theta, best_psi, amp - best_theta
