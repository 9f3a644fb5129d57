"""Spiking neuron modules. State lives in the module and is cleared by :meth:`SpikingNeuron.reset`.

Every neuron emits spikes of amplitude θ (``out = θ·s``), so the weights of the next layer need no rescaling,
and counts its binary spikes per sample while ``record`` is on, so SOPs are exact.

Parallel neurons can take their levels from a *level plan*: a rate-mode pass after
:meth:`ParallelIFNeuron.begin_plan` stores every neuron's level, and the following spike-mode pass fires exactly
those levels instead of recomputing them from ``Σ_t I(t)`` (:class:`~ann2snn.simulate.SpikingModel` does this so
that spike mode and rate mode fire bit-identical levels in any float precision; docs/parallel.md, "Float32").
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ann2snn import functional as F
from ann2snn.layers.activations import format_threshold

SPIKE_MODE = "spike"
RATE_MODE = "rate"


def compact_levels(level: Tensor, timesteps: int) -> Tensor:
    """Integer levels in [0, T] in the smallest integer dtype that holds T (exact; 1 byte per neuron for T ≤ 255)."""
    dtype = torch.uint8 if timesteps <= 255 else torch.int16 if timesteps <= 32767 else torch.int32
    return level.to(dtype)


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
    time-mean output ``n·(θ + φ_DA)/T``. Both give the same n up to the round-off of the two float sums; under a
    level plan (:meth:`begin_plan`) spike mode fires rate mode's n exactly.

    ``bias`` (ψ_DA) and ``amplitude_correction`` (φ_DA) default to zero and broadcast like θ.
    """

    bias: Tensor
    amplitude_correction: Tensor
    # Level plan (class defaults, so modules pickled before it existed still load):
    _planning = False  # rate mode stores its levels (begin_plan)
    _plan: tuple[Tensor, ...] | None = None  # stored per-sample state, consumed by spike mode
    _plan_row = 0  # samples of the plan already consumed
    _plan_void = False  # called twice in one planning pass: spike mode uses its currents

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

    def begin_plan(self) -> None:
        """Start a level plan: each following rate-mode call stores the levels it computes (compactly)."""
        self._planning = True
        self._plan, self._plan_row, self._plan_void = None, 0, False

    def end_plan(self, keep: bool) -> None:
        """Stop storing; ``keep=True`` keeps the plan for the spike-mode calls, ``False`` drops it.

        While a plan is kept, spike-mode calls fire the stored levels of the next ``B`` samples (in order, so a
        batch may come in chunks) instead of the levels of their summed currents; asking for more samples than
        were stored is an error.
        """
        self._planning = False
        if not keep:
            self._plan, self._plan_row, self._plan_void = None, 0, False

    def _keep(self, *state: Tensor) -> None:
        """Store a rate-mode call's per-sample state for the coming spike-mode calls (while planning)."""
        if self._plan is not None or self._plan_void:  # a module used at two places: no single plan
            self._plan, self._plan_void = None, True
            return
        self._plan = tuple(t.detach() for t in state)

    def _planned(self, samples: int, per_sample_shape: torch.Size) -> tuple[Tensor, ...] | None:
        """The stored state of the next ``samples`` samples, or ``None`` when no plan is held."""
        plan = self._plan
        if plan is None:
            return None
        start, stop = self._plan_row, self._plan_row + samples
        if stop > plan[0].shape[0] or plan[0].shape[1:] != per_sample_shape:
            raise RuntimeError(
                f"{type(self).__name__}: level plan holds {plan[0].shape[0]} sample(s) of shape "
                f"{tuple(plan[0].shape[1:])}, asked for samples {start}..{stop - 1} of shape {tuple(per_sample_shape)}"
            )
        self._plan_row = stop
        return tuple(t[start:stop] for t in plan)

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

    def set_bias(self, bias: Tensor) -> None:
        """Set ψ_DA without a device sync: it is then added even if all zero (the same levels, one add more)."""
        self.bias = bias
        self._bias_cache = (bias, bias._version, True)

    def forward(self, current: Tensor) -> Tensor:
        T = self.timesteps
        if self.mode == RATE_MODE:
            level = F.rate_level(current, T, self.threshold, bias=self._bias())
            if self._planning:
                self._keep(compact_levels(level, T))
            self._count(level.flatten(1).sum(1), current.shape[1:])
            return F.rate_from_level(level, T, self.amplitude)
        if current.shape[0] % T:
            raise RuntimeError(f"parallel neuron got a batch of {current.shape[0]}, not a multiple of T={T}")
        planned = self._planned(current.shape[0] // T, current.shape[1:])
        if planned is not None:
            level = planned[0].to(current.dtype)
        else:
            seq = current.reshape((T, current.shape[0] // T) + current.shape[1:])
            level = F.parallel_if_level(seq.sum(0), T, self.threshold, bias=self._bias())
        self._count(level.flatten(1).sum(1), current.shape[1:])
        spikes = F.spikes_from_level(level, T, self.order, amplitude=self.amplitude)
        return spikes.reshape(current.shape)

    def extra_repr(self) -> str:
        return f"threshold={format_threshold(self.threshold)}, timesteps={self.timesteps}, order={self.order!r}"
