"""Threshold search by minimum activation MSE at T steps (Li et al., ICML 2021; methods.md §5).

A neuron with threshold θ run for T steps emits ``θ/T·clamp(floor(a·T/θ + shift), 0, T)`` for a constant input
``a`` (shift = ``v_init``: 0.5 for the parallel neuron and QCFS-style serial IF, 0 for Diehl/Rueckauer IF). The
best θ trades clipping error (θ too small) against quantization error (θ too large); this module searches it
per layer or per channel on recorded ReLU outputs.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ann2snn.errors import CalibrationError


def quantize(a: Tensor, threshold: Tensor, timesteps: int, shift: float = 0.5) -> Tensor:
    """Rate-coded value ``θ/T·clamp(floor(a·T/θ + shift), 0, T)``; ``threshold`` broadcasts against ``a``."""
    return torch.clamp(torch.floor(a * timesteps / threshold + shift), 0, timesteps) * threshold / timesteps


def quantization_mse(samples: Tensor, threshold: Tensor, timesteps: int, shift: float = 0.5) -> Tensor:
    """Mean squared error per row of ``samples`` ``[C, N]`` for thresholds ``[C]``. Shape: → ``[C]``."""
    q = quantize(samples, threshold.reshape(-1, 1), timesteps, shift)
    return (samples - q).pow(2).mean(dim=1)


def mse_threshold(
    samples: Tensor,
    timesteps: int,
    shift: float = 0.5,
    *,
    grid: int = 100,
    low: float = 0.05,
    max_samples: int = 1 << 15,
) -> Tensor:
    """Per-row threshold θ minimising :func:`quantization_mse` over a grid of fractions of the row max.

    Args:
        samples: non-negative activations ``[C, N]`` (one row per channel; ``C = 1`` for a per-layer θ).
        timesteps: T, the number of steps the neuron runs (the quantizer has T levels).
        shift: the rounding shift (``v_init`` as a fraction of θ).
        grid: candidates ``max·k/grid`` for ``k`` from ``low·grid`` to ``grid``, then a local refinement
            on a 10× finer grid around the best candidate.
        low: the smallest candidate as a fraction of the row max.
        max_samples: rows longer than this are searched on a seeded random subsample (the max stays exact).

    Returns:
        Thresholds ``[C]``; rows that are all zero get 1.0 (the channel never fires, any θ is exact).

    Shape:
        ``samples`` ``[C, N]`` → ``[C]``.
    """
    if samples.dim() != 2 or samples.shape[1] == 0:
        raise CalibrationError(f"mse_threshold needs samples [C, N] with N > 0, got shape {tuple(samples.shape)}")
    top = samples.max(dim=1).values.to(torch.float64)
    if samples.shape[1] > max_samples:
        gen = torch.Generator(device=samples.device).manual_seed(0)
        keep = torch.randperm(samples.shape[1], generator=gen, device=samples.device)[:max_samples]
        samples = samples[:, keep]
    samples = samples.to(torch.float64)
    scale = torch.where(top > 0, top, torch.ones_like(top))
    n_coarse = max(2, int(round(grid * (1 - low))) + 1)
    coarse = torch.linspace(low, 1.0, n_coarse, dtype=torch.float64, device=samples.device)
    rel = _best_fraction(samples, scale, torch.ones_like(scale).unsqueeze(0) * coarse.unsqueeze(1), timesteps, shift)
    host_grid = torch.linspace(low, 1.0, n_coarse, dtype=torch.float64, device="cpu")  # host math, no device sync
    step = float(host_grid[1] - host_grid[0])
    fine = rel.unsqueeze(0) + torch.linspace(-step, step, 21, dtype=torch.float64, device=samples.device).unsqueeze(1)
    rel = _best_fraction(samples, scale, fine.clamp_min(1e-6), timesteps, shift)
    return torch.where(top > 0, rel * scale, torch.ones_like(scale)).to(torch.float32)


def _best_fraction(samples: Tensor, scale: Tensor, fractions: Tensor, timesteps: int, shift: float) -> Tensor:
    """Per row, the fraction (of ``fractions`` ``[K, C]``) whose θ = fraction·scale has the least MSE."""
    best_err = torch.full_like(scale, float("inf"))
    best = fractions[-1].clone()
    for frac in fractions:
        err = quantization_mse(samples, frac * scale, timesteps, shift)
        better = err < best_err
        best = torch.where(better, frac, best)
        best_err = torch.where(better, err, best_err)
    return best
