"""Serial neurons of the low-latency baselines: signed IF (SNM/Fast-SNN), SRP and COS (pre-simulation).

Thin stateful wrappers over :mod:`ann2snn.functional.baseline_neuron`. SRP and COS neurons count their own time
steps: the first ``presteps`` calls are the pre-simulation (they fire normally, so the next layer pre-simulates
on real spikes), then each neuron applies its rule once, restarts from its (possibly shifted) initial potential
and runs the real steps. :func:`ann2snn.simulate` feeds ``presteps + T`` steps and reads only the last T.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ann2snn import functional as F
from ann2snn.functional import baseline_neuron as B
from ann2snn.layers.activations import format_threshold
from ann2snn.layers.neurons import IFNeuron, SpikingNeuron


class SignedIFNeuron(SpikingNeuron):
    """Signed IF neuron: ``+θ`` when ``v ≥ θ``, ``−θ`` when ``v < θ⁻`` and the net spike count is positive.

    ``neg_threshold`` θ⁻ is a fraction of θ; ``None`` takes the symmetric ``2·v_init − 1`` (0 for ``v_init = 1/2``,
    −1 for ``v_init = 0`` as in SNM). Spike counts (for SOPs) count negative spikes as events too.

    Shape: input current ``[B, ...]`` → output ``θ·s`` ``[B, ...]`` with s in {−1, 0, 1}.
    """

    def __init__(self, threshold: float | Tensor, *, v_init: float = 0.5, neg_threshold: float | None = None) -> None:
        super().__init__(threshold)
        self.v_init = float(v_init)
        self.neg_fraction = B.symmetric_neg_threshold(self.v_init) if neg_threshold is None else float(neg_threshold)
        self.v: Tensor | None = None
        self.net: Tensor | None = None

    def reset(self) -> None:
        super().reset()
        self.v = None
        self.net = None

    def forward(self, current: Tensor) -> Tensor:
        if self.v is None or self.net is None or self.v.shape != current.shape:
            self.v = torch.zeros_like(current) + self.v_init * self.threshold
            self.net = torch.zeros_like(current)
        spikes, self.v, self.net = B.signed_if_step(
            self.v, current, self.threshold, self.net, self.neg_fraction * self.threshold
        )
        self._count(spikes.abs().flatten(1).sum(1), current.shape[1:])
        return spikes * self.threshold

    def extra_repr(self) -> str:
        return f"threshold={format_threshold(self.threshold)}, v_init={self.v_init}, neg_threshold={self.neg_fraction}"


class _PreSimIFNeuron(IFNeuron):
    """IF neuron (reset by subtraction) that pre-simulates ``presteps`` steps, then restarts for the real run."""

    def __init__(self, threshold: float | Tensor, presteps: int, *, v_init: float = 0.5) -> None:
        super().__init__(threshold, v_init=v_init)
        self.presteps = int(presteps)
        self.t = 0

    def reset(self) -> None:
        super().reset()
        self.t = 0
        self._clear()

    def _clear(self) -> None:
        """Drop the method's own state."""

    def _start(self, current: Tensor) -> None:
        """Set up the method's state for a new input shaped like ``current``."""

    def _observe(self, v_pre: Tensor, spikes: Tensor) -> None:
        """Record one pre-simulation step (``v_pre``: potential after integration, before the reset)."""

    def _finish_presim(self) -> Tensor:
        """Apply the method's rule at the end of pre-simulation; return the real run's initial potential."""
        raise NotImplementedError

    def _output(self, spikes: Tensor) -> Tensor:
        return spikes

    def forward(self, current: Tensor) -> Tensor:
        if self.v is None or self.v.shape != current.shape:
            self.v = torch.zeros_like(current) + self.v_init * self.threshold
            self.t = 0
            self._start(current)
        if self.t == self.presteps and self.presteps > 0:
            self.v = self._finish_presim()
        v_pre = self.v + current
        spikes, self.v = F.if_step(self.v, current, self.threshold)
        if self.t < self.presteps:
            self._observe(v_pre, spikes)
        else:
            spikes = self._output(spikes)
        self.t += 1
        self._count(spikes.flatten(1).sum(1), current.shape[1:])
        return spikes * self.threshold

    def extra_repr(self) -> str:
        return f"threshold={format_threshold(self.threshold)}, presteps={self.presteps}, v_init={self.v_init}"


class SRPNeuron(_PreSimIFNeuron):
    """SRP neuron (Hao et al. AAAI 2023): τ = ``presteps`` pre-simulation steps; neurons whose residual potential
    is not positive at the end (:func:`~ann2snn.functional.baseline_neuron.srp_keep_mask`) stay silent in the
    real run, which restarts every neuron from ``v_init·θ``.

    Shape: input current ``[B, ...]`` → output ``θ·spikes`` ``[B, ...]`` (one call per time step).
    """

    def _clear(self) -> None:
        self.keep: Tensor | None = None

    def _start(self, current: Tensor) -> None:
        self.keep = None

    def _finish_presim(self) -> Tensor:
        assert self.v is not None
        self.keep = B.srp_keep_mask(self.v, self.threshold)
        return torch.zeros_like(self.v) + self.v_init * self.threshold

    def _output(self, spikes: Tensor) -> Tensor:
        return spikes if self.keep is None else spikes * self.keep


class COSNeuron(_PreSimIFNeuron):
    """COS neuron (Hao et al. ICLR 2023): ρ = ``presteps`` pre-simulation steps; each neuron then restarts the real
    run from ``v_init·θ`` plus the shift :func:`~ann2snn.functional.baseline_neuron.cos_initial_shift` that
    cancels its offset spike (one spike too many → lower v(0), one too few → raise it).

    Shape: input current ``[B, ...]`` → output ``θ·spikes`` ``[B, ...]`` (one call per time step).
    """

    def _clear(self) -> None:
        self.count: Tensor | None = None
        self.fire_min: Tensor | None = None
        self.rest_max: Tensor | None = None
        self.shift: Tensor | None = None

    def _start(self, current: Tensor) -> None:
        self.count = torch.zeros_like(current)
        self.fire_min, self.rest_max = B.cos_initial_records(current, self.threshold)
        self.shift = None

    def _observe(self, v_pre: Tensor, spikes: Tensor) -> None:
        assert self.count is not None and self.fire_min is not None and self.rest_max is not None
        self.count = self.count + spikes
        self.fire_min, self.rest_max = B.cos_track(self.fire_min, self.rest_max, v_pre, spikes)

    def _finish_presim(self) -> Tensor:
        assert self.v is not None and self.count is not None
        assert self.fire_min is not None and self.rest_max is not None
        self.shift = B.cos_initial_shift(self.v, self.count, self.fire_min, self.rest_max, self.threshold)
        return self.v_init * self.threshold + self.shift
