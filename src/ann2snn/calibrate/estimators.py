"""Estimators of the DA calibration parameters ψ_DA (pre-activation bias) and φ_DA (amplitude correction).

Pure functions over per-channel statistics (methods.md §3):

- :func:`ema_update`: the paper's rule ``est ← α·est + (1 − α)·value`` from 0 (needs ~1/(1 − α) batches).
- :func:`mean_update`: the plain running mean of the per-batch values (unbiased after one batch).
- :func:`match_output_mean`: exact output-mean matching: a per-channel bisection over ψ on recorded
  pre-activations, then φ so that the calibrated channel's output mean equals the reference's.
"""

from __future__ import annotations

import numpy as np
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

    For every candidate threshold ``s·θ`` (``s`` in ``scales``) and ψ (a grid over [−sθ/2, sθ/2], then a walk over
    a finer grid around the best) the amplitude is set by mean matching, ``θ' + φ = target·T/mean(level)``; among
    the pairs whose mean can be matched with ``|φ| ≤ max_correction·θ'``, the one whose output has the least
    squared error against the paired reference activations wins (the first on ties; if none can: θ kept, ψ = 0,
    φ clipped). Exact mean as :func:`match_output_mean`, and a better shape where the SNN's T levels must imitate
    a finer reference (QCFS at L > T, ClipReLU). ``scales=(1.0,)`` keeps the thresholds.

    Cost: the samples are sorted once per channel; a candidate then costs T binary searches (the neuron's level
    is non-decreasing in its input, also in floating point) instead of a pass over all samples, so the levels are
    the neuron's own and the squared error, accumulated in float64 from the level counts and suffix sums of the
    reference, equals the sample-wise one up to round-off.

    Returns:
        ``(threshold, psi, phi)``, each ``[C]``.

    Shape:
        ``samples`` and ``reference`` ``[C, N]`` (paired values); ``target``, ``threshold`` ``[C]``.
    """
    dtype = samples.dtype
    stats = _LevelSums(samples, reference.to(dtype), target.to(dtype), timesteps, max_correction)
    base = threshold.to(dtype)
    fractions = torch.linspace(-0.5, 0.5, grid + 1, dtype=dtype, device=base.device)
    thetas = torch.stack([base * s for s in scales for _ in fractions], dim=1)  # [C, K], in the order tried
    psis = torch.stack([base * s * f for s in scales for f in fractions], dim=1)
    err, _ = stats.evaluate(thetas, psis)
    best_err, pick = err.min(dim=1, keepdim=True)  # the first minimum
    found = best_err.squeeze(1) < float("inf")
    best_theta = torch.where(found, thetas.gather(1, pick).squeeze(1), base)
    best_psi = torch.where(found, psis.gather(1, pick).squeeze(1), torch.zeros_like(base))
    best_err = best_err.squeeze(1)
    step = best_theta / grid
    for f in torch.linspace(-1, 1, 17, dtype=dtype, device=base.device):  # a walk: each step from the best so far
        psi = best_psi + f * step
        err = stats.evaluate(best_theta.unsqueeze(1), psi.unsqueeze(1))[0].squeeze(1)
        better = err < best_err
        best_psi = torch.where(better, psi, best_psi)
        best_err = torch.where(better, err, best_err)
    _, amp = stats.evaluate(best_theta.unsqueeze(1), best_psi.unsqueeze(1))
    return best_theta, best_psi, amp.squeeze(1) - best_theta


class _LevelSums:
    """Sorted samples of each channel with the suffix sums of their paired reference values (for
    :func:`match_output_mse`): the level counts and ``Σ level·ref`` of any (θ, ψ) from T binary searches."""

    def __init__(self, samples: Tensor, reference: Tensor, target: Tensor, timesteps: int, max_correction: float):
        order = _argsort_rows(samples)
        self.z = samples.gather(1, order)
        ref = reference.gather(1, order).to(torch.float64)
        zero = torch.zeros(len(ref), 1, dtype=ref.dtype, device=ref.device)
        self.suffix = torch.cat([ref.flip(1).cumsum(1).flip(1), zero], dim=1)  # Σ_{j ≥ i} ref_j, [C, N + 1]
        self.ref_sq = ref.pow(2).sum(dim=1, keepdim=True)
        self.target = target.unsqueeze(1)
        self.timesteps = timesteps
        self.max_correction = max_correction
        self.steps = torch.arange(1, timesteps + 1, device=samples.device)

    def first_at_least(self, theta: Tensor, psi: Tensor) -> Tensor:
        """``[C, K, T]``: per candidate (θ, ψ) ``[C, K]`` and level k = 1..T, the first sorted index at level ≥ k."""
        (c, k), n, T = theta.shape, self.z.shape[1], self.timesteps
        lo = torch.zeros(c, k, T, dtype=torch.long, device=theta.device)
        hi = torch.full_like(lo, n)
        th, ps, steps = theta.unsqueeze(2), psi.unsqueeze(2), self.steps.to(self.z.dtype)
        for _ in range(n.bit_length() + 1):
            active = lo < hi
            mid = (lo + hi) // 2
            probe = self.z.gather(1, mid.clamp(max=n - 1).reshape(c, -1)).reshape(c, k, T)
            reached = F.rate_level(probe, T, th, bias=ps) >= steps
            hi = torch.where(active & reached, mid, hi)
            lo = torch.where(active & ~reached, mid + 1, lo)
        return lo

    def evaluate(self, theta: Tensor, psi: Tensor) -> tuple[Tensor, Tensor]:
        """Per candidate ``[C, K]``: mean squared error (``inf`` where the mean cannot be matched) and amplitude."""
        (c, k), n, T = theta.shape, self.z.shape[1], self.timesteps
        first = self.first_at_least(theta, psi)
        at_least = n - first  # samples at level ≥ k
        mean_level = at_least.sum(dim=2).to(theta.dtype) / n
        sum_sq = ((2 * self.steps - 1) * at_least).sum(dim=2).to(torch.float64)  # Σ level²
        sum_cross = self.suffix.gather(1, first.reshape(c, -1)).reshape(c, k, T).sum(dim=2)  # Σ level·ref
        tiny = torch.finfo(theta.dtype).tiny
        exact = torch.where(mean_level > 0, self.target * T / mean_level.clamp_min(tiny), theta)
        mc = self.max_correction
        amp = torch.minimum(torch.maximum(exact, (1 - mc) * theta), (1 + mc) * theta)
        a = (amp / T).to(torch.float64)
        err = (a * a * sum_sq - 2 * a * sum_cross + self.ref_sq) / n
        feasible = (amp == exact) & ((mean_level > 0) | (self.target == 0)) & (theta > 0)
        return torch.where(feasible, err, torch.full_like(err, float("inf"))), amp


def _argsort_rows(x: Tensor) -> Tensor:
    """Per-row sorting permutation (NumPy's introsort on the CPU: several times faster than torch's there)."""
    if x.device.type == "cpu" and x.dtype in (torch.float32, torch.float64):
        return torch.from_numpy(np.argsort(x.detach().numpy(), axis=1, kind="quicksort"))
    return x.argsort(dim=1)
