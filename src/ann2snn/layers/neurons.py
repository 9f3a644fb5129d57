"""Spiking neuron modules. State lives in the module and is cleared by :meth:`SpikingNeuron.reset`.

Every neuron emits spikes of amplitude θ (``out = θ·s``), so the weights of the next layer need no rescaling,
and counts its binary spikes per sample while ``record`` is on, so SOPs are exact.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ann2snn import functional as F
from ann2snn.layers.activations import format_threshold

SPIKE_MODE = "spike"
RATE_MODE = "rate"


def _as_buffer(value: float | Tensor) -> Tensor:
    # A floating tensor keeps its dtype: rounding a float64 threshold to float32 would break exactness.
    if isinstance(value, Tensor) and value.is_floating_point():
        return value.detach().clone()
    return torch.as_tensor(value, dtype=torch.get_default_dtype()).detach().clone()


class SpikingNeuron(nn.Module):
    """Base class: a threshold buffer, spike counting and reset."""

    threshold: Tensor

    def __init__(self, threshold: float | Tensor) -> None:
        super().__init__()
        self.register_buffer("threshold", _as_buffer(threshold))
        self.record = False
        self.spike_count: Tensor | None = None  # [B] spikes per sample since the last reset
        self.num_neurons = 0  # neurons per sample, set on the first forward

    def reset(self) -> None:
        if self.spike_count is not None:  # nn.Module.__setattr__ is slow; skip no-op writes
            self.spike_count = None

    def _count(self, spikes_per_sample: Tensor, per_sample_shape: torch.Size) -> None:
        if not self.record:
            return
        self.num_neurons = int(torch.Size(per_sample_shape).numel())
        counts = spikes_per_sample.detach().to(torch.float64)
        self.spike_count = counts if self.spike_count is None else self.spike_count + counts


class IFNeuron(SpikingNeuron):
    """Serial integrate-and-fire neuron (``leak=1``) or leaky neuron (``leak<1`` or ``leak_delta>0``).

    Reset by subtraction (default) or to zero; ``v(0) = v_init·θ``. Called once per time step.

    Shape: input current ``[B, ...]`` → output ``θ·spikes`` ``[B, ...]``.
    """

    def __init__(
        self,
        threshold: float | Tensor,
        *,
        v_init: float = 0.5,
        leak: float = 1.0,
        leak_delta: float = 0.0,
        reset: str = "subtract",
    ) -> None:
        super().__init__(threshold)
        self.v_init = float(v_init)
        self.leak = float(leak)
        self.leak_delta = float(leak_delta)
        self.reset_mode = reset
        self.v: Tensor | None = None

    def reset(self) -> None:
        super().reset()
        self.v = None

    def forward(self, current: Tensor) -> Tensor:
        if self.v is None or self.v.shape != current.shape:
            self.v = torch.zeros_like(current) + self.v_init * self.threshold
        spikes, self.v = F.if_step(
            self.v, current, self.threshold, leak=self.leak, leak_delta=self.leak_delta, reset=self.reset_mode
        )
        self._count(spikes.flatten(1).sum(1), current.shape[1:])
        return spikes * self.threshold

    def extra_repr(self) -> str:
        return (
            f"threshold={format_threshold(self.threshold)}, v_init={self.v_init}, leak={self.leak}, "
            f"leak_delta={self.leak_delta}, reset={self.reset_mode!r}"
        )


class ParallelIFNeuron(SpikingNeuron):
    """Parallel IF neuron: all T steps at once, ``n = clamp(floor((Σ_t I + T·ψ_DA)/θ + 1/2), 0, T)``.

    ``mode="spike"``: input ``[T·B, ...]`` (time flattened into the batch, time-major) → sorted spike train
    ``[T·B, ...]`` of amplitude ``θ + φ_DA``. ``mode="rate"``: input is the time-mean current ``[B, ...]`` → the
    time-mean output ``n·(θ + φ_DA)/T``. Both give the same n.

    ``bias`` (ψ_DA) and ``amplitude_correction`` (φ_DA) default to zero and broadcast like θ.
    """

    bias: Tensor
    amplitude_correction: Tensor

    def __init__(
        self,
        threshold: float | Tensor,
        timesteps: int,
        *,
        bias: float | Tensor = 0.0,
        amplitude_correction: float | Tensor = 0.0,
        order: str = "front",
    ) -> None:
        super().__init__(threshold)
        self.register_buffer("bias", _as_buffer(bias))
        self.register_buffer("amplitude_correction", _as_buffer(amplitude_correction))
        self.timesteps = int(timesteps)
        self.order = order
        self.mode = SPIKE_MODE

    @property
    def amplitude(self) -> Tensor:
        return self.threshold + self.amplitude_correction

    def _bias(self) -> Tensor | None:
        """ψ_DA, or ``None`` when it is all zero; cached per tensor and version (no device sync per call)."""
        bias = self.bias
        cache = getattr(self, "_bias_cache", None)
        if cache is None or cache[0] is not bias or cache[1] != bias._version:
            cache = (bias, bias._version, bool(torch.any(bias != 0)))
            self._bias_cache = cache
        return bias if cache[2] else None

    def forward(self, current: Tensor) -> Tensor:
        T = self.timesteps
        if self.mode == RATE_MODE:
            level = F.rate_level(current, T, self.threshold, bias=self._bias())
            self._count(level.flatten(1).sum(1), current.shape[1:])
            return F.rate_from_level(level, T, self.amplitude)
        if current.shape[0] % T:
            raise RuntimeError(f"parallel neuron got a batch of {current.shape[0]}, not a multiple of T={T}")
        seq = current.reshape((T, current.shape[0] // T) + current.shape[1:])
        level = F.parallel_if_level(seq.sum(0), T, self.threshold, bias=self._bias())
        self._count(level.flatten(1).sum(1), current.shape[1:])
        spikes = F.spikes_from_level(level, T, self.order, amplitude=self.amplitude)
        return spikes.reshape(current.shape)

    def extra_repr(self) -> str:
        return f"threshold={format_threshold(self.threshold)}, timesteps={self.timesteps}, order={self.order!r}"
