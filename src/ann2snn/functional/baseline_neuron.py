"""Neuron rules of the low-latency baselines as pure functions (methods.md §2, §5).

- Signed IF neuron (SNM, Wang et al. IJCAI 2022; Fast-SNN, Hu et al. TPAMI 2023): may emit a negative spike.
- SRP (Hao et al. AAAI 2023): after τ pre-simulation steps, suppress neurons with no residual potential.
- COS (Hao et al. ICLR 2023): after ρ pre-simulation steps, shift v(0) by the neuron's offset spike.

All potentials are absolute (not divided by θ); ``threshold`` broadcasts against the state tensors.
Tags in the docstrings: [paper] stated by the source, [code] read from the authors' released code, [ours] our
choice where the sources are silent.
"""

from __future__ import annotations

import torch
from torch import Tensor

SRP_EPS = 1e-3
"""SRP keeps a neuron iff its residual potential after pre-simulation exceeds ``SRP_EPS·θ`` [code]."""

COS_MARGIN = 1e-3
"""COS moves the decisive step's potential to ``(1 ∓ COS_MARGIN)·θ`` when the shift must exceed θ [code]."""

COS_NO_STEP = 1000.0
"""COS's stand-in (in units of θ) for "no such pre-simulation step" in its min/max tracking [code]."""


def symmetric_neg_threshold(v_init: float) -> float:
    """Default negative threshold of the signed IF neuron, as a fraction of θ: ``2·v_init − 1`` [ours].

    It sits as far below ``v(0)`` as the positive threshold θ sits above it, so the neuron rounds its running input
    sum symmetrically: ``v_init = 0`` gives −θ (SNM's ``NegThresh = −θ``), ``v_init = 1/2`` gives 0 (the QCFS
    round-half-up: with input changes below θ per step the net count after t steps is ``floor(Σ I/θ + 1/2)``).
    """
    return 2.0 * v_init - 1.0


def signed_if_step(
    v: Tensor, current: Tensor, threshold: Tensor | float, net: Tensor, neg_threshold: Tensor | float
) -> tuple[Tensor, Tensor, Tensor]:
    """One step of the signed IF neuron (reset by subtraction); returns ``(spikes, v_next, net_next)``.

    ``v ← v + I``; ``s = +1`` if ``v ≥ θ``; ``s = −1`` if ``v < θ⁻`` and the net spike count ``net > 0``;
    else 0. Then ``v ← v − s·θ`` and ``net ← net + s``. So a neuron never sends a net negative total, and a
    negative spike takes back one earlier positive spike [paper, SNM/Fast-SNN]. ``neg_threshold`` θ⁻ is absolute.

    Shape: ``v``, ``current``, ``net`` ``[B, ...]``; spikes in {−1, 0, 1} with the same shape.
    """
    v = v + current
    pos = v >= threshold
    neg = (v < neg_threshold) & (net > 0) & ~pos
    spikes = pos.to(current.dtype) - neg.to(current.dtype)
    v = v - spikes * threshold
    return spikes, v, net + spikes


def srp_keep_mask(v: Tensor, threshold: Tensor | float, eps: float = SRP_EPS) -> Tensor:
    """SRP: 1 where the residual potential after pre-simulation is positive (``v > eps·θ``), else 0.

    A neuron whose potential, started at θ/2, ends the τ pre-simulation steps at or below zero got at least as much
    negative as positive input relative to its spikes; SRP reads this as "the ANN output is zero but the SNN
    fires" (the dominant unevenness-error case) and silences the neuron for the real run [paper]. The comparison
    ``v > 10⁻³·θ`` is the released code's [code].

    Shape: ``v`` ``[B, ...]`` → float mask ``[B, ...]``.
    """
    return (v > eps * threshold).to(v.dtype)


def cos_track(fire_min: Tensor, rest_max: Tensor, v: Tensor, spikes: Tensor) -> tuple[Tensor, Tensor]:
    """Update COS's pre-simulation records after one IF step.

    ``fire_min``: lowest pre-reset potential over the steps where the neuron fired; ``rest_max``: highest
    potential over the steps where it did not. ``v`` is the potential after integration, before the reset.
    """
    fired = spikes > 0
    fire_min = torch.where(fired, torch.minimum(fire_min, v), fire_min)
    rest_max = torch.where(fired, rest_max, torch.maximum(rest_max, v))
    return fire_min, rest_max


def cos_initial_shift(
    v: Tensor, count: Tensor, fire_min: Tensor, rest_max: Tensor, threshold: Tensor | float
) -> Tensor:
    """COS: the shift of v(0) that removes (or adds) the offset spike seen in pre-simulation.

    After ρ pre-simulation steps from v(0) = θ/2 with residual potential ``v`` and ``count`` spikes:

    - ``v < 0`` and ``count > 0``: one spike too many (offset spike +1) → shift down by
      ``max(θ, fire_min − (1 − 10⁻³)·θ)``, i.e. θ, or enough to keep the weakest firing step below θ [paper+code];
    - ``v ≥ θ``: one spike too few (offset spike −1) → shift up by ``max(θ, (1 + 10⁻³)·θ − rest_max)``, i.e.
      θ, or enough to lift the strongest silent step over θ; a neuron that fired at every step has no silent step
      and gets the released code's stand-in ``rest_max = −1000·θ`` (it then fires at every real step) [code];
    - otherwise 0.

    Shape: all ``[B, ...]`` (``threshold`` broadcasts) → shift ``[B, ...]``.
    """
    th = torch.as_tensor(threshold, dtype=v.dtype, device=v.device)
    down = torch.where(fire_min - (1 - COS_MARGIN) * th > th, fire_min - (1 - COS_MARGIN) * th, th)
    up = torch.where((1 + COS_MARGIN) * th - rest_max > th, (1 + COS_MARGIN) * th - rest_max, th)
    lower = (v < 0) & (count > 0)
    higher = v >= th
    zero = torch.zeros_like(v)
    return torch.where(higher, up, torch.where(lower, -down, zero))


def cos_initial_records(v: Tensor, threshold: Tensor | float) -> tuple[Tensor, Tensor]:
    """Empty COS records for state shaped like ``v``: ``fire_min = +1000·θ``, ``rest_max = −1000·θ`` [code]."""
    th = torch.as_tensor(threshold, dtype=v.dtype, device=v.device)
    big = torch.zeros_like(v) + COS_NO_STEP * th
    return big, -big
