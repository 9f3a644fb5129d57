"""The neuron a StepReLU site becomes: membrane-potential encoding, optional leak (docs/steprelu.md).

A thin module over :mod:`ann2snn.functional.step_neuron`. It runs under the parallel execution of
:class:`~ann2snn.simulate.SpikingModel` (it needs all T input currents of its layer before it fires), in spike mode
(time flattened into the batch) or rate mode (time-mean currents, about one ANN forward, same spike counts).
"""

from __future__ import annotations

import torch
from torch import Tensor

from ann2snn.functional import spikes_from_level
from ann2snn.functional import step_neuron as S
from ann2snn.layers.neurons import RATE_MODE, ParallelIFNeuron


class StepIFNeuron(ParallelIFNeuron):
    """Integrate-then-fire neuron reproducing StepReLU(step θ_s, steps n) at T = n.

    Threshold Θ = n·θ_s (per spike, in units of summed current); spikes have amplitude T·u with ``u = n·θ_s/T``
    (Θ itself at T = n). ``leak`` λ (exponential) and ``leak_delta`` δ (linear, a fraction of Θ per step) act in
    the firing phase; λ = 1, δ = 0 is the leak-free neuron, whose outputs are computed in closed form.

    Shape: spike mode ``[T·B, ...]`` → ``[T·B, ...]`` (time-major); rate mode ``[B, ...]`` → ``[B, ...]``.
    """

    def __init__(
        self,
        step: float,
        steps: int,
        timesteps: int,
        *,
        rounding: str = "ceil",
        clip: bool = False,
        leak: float = 1.0,
        leak_delta: float = 0.0,
        order: str = "front",
    ) -> None:
        super().__init__(float(step) * int(steps), timesteps, order=order)
        self.step = float(step)
        self.steps = int(steps)
        self.rounding = rounding
        self.clip = bool(clip)
        self.leak = float(leak)
        self.leak_delta = float(leak_delta)

    @property
    def leaky(self) -> bool:
        return self.leak != 1.0 or self.leak_delta != 0.0

    def _mean_output(self, mean: Tensor, T: int) -> tuple[Tensor, Tensor, Tensor]:
        """``(level, overflow_mean, rate_output)`` from the time-mean current."""
        unit = S.step_unit(self.step, self.steps, T)
        if not self.leaky:
            level = S.step_level(mean, unit, T, self.rounding, self.clip)
            overflow = S.step_overflow(mean, unit, T, self.clip)
            return level, overflow, S.step_rate(mean, unit, T, self.rounding, self.clip)
        level, residual = S.leaky_fire(
            mean * T,
            T * unit,
            T,
            leak=self.leak,
            leak_delta=self.leak_delta,
            rounding=self.rounding,
            clip=self.clip,
        )
        overflow = residual / T
        return level, overflow, level * unit + overflow

    def forward(self, current: Tensor) -> Tensor:
        T = self.timesteps
        if self.mode == RATE_MODE:
            level, overflow, out = self._mean_output(current, T)
            if self._planning:
                self._keep(level, overflow)
            self._count((level + (overflow > 0).to(level.dtype)).flatten(1).sum(1), current.shape[1:])
            return out
        if current.shape[0] % T:
            raise RuntimeError(f"StepIFNeuron got a batch of {current.shape[0]}, not a multiple of T={T}")
        planned = self._planned(current.shape[0] // T, current.shape[1:])
        if planned is not None:  # the level plan of a rate-mode pass (bit-identical to rate mode)
            level, overflow = planned
        else:
            seq = current.reshape((T, current.shape[0] // T) + current.shape[1:])
            level, overflow, _ = self._mean_output(seq.sum(0) / T, T)
        self._count((level + (overflow > 0).to(level.dtype)).flatten(1).sum(1), current.shape[1:])
        unit = S.step_unit(self.step, self.steps, T)
        spikes = spikes_from_level(level, T, self.order, amplitude=T * unit)
        if not self.clip:  # the graded overflow spike, at the last step
            spikes = torch.cat([spikes[:-1], (spikes[-1] + overflow * T).unsqueeze(0)])
        return spikes.reshape(current.shape)

    def extra_repr(self) -> str:
        return (
            f"step={self.step}, steps={self.steps}, timesteps={self.timesteps}, rounding={self.rounding!r}, "
            f"clip={self.clip}, leak={self.leak}, leak_delta={self.leak_delta}"
        )
