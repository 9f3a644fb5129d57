"""``simulate``: run a converted SNN on analog inputs (direct encoding) and collect what happened."""

from __future__ import annotations

import dataclasses

import torch
from torch import Tensor

from ann2snn.errors import ConfigError, InputError
from ann2snn.limits import check_int
from ann2snn.simulate.memory import plan as memory_plan
from ann2snn.simulate.model import SpikingModel
from ann2snn.validation import call_checked

MODES = ("spike", "rate")


@dataclasses.dataclass
class SimResult:
    """What a simulation produced.

    Attributes:
        outputs: per-step outputs ``[T, B, K]`` (spike mode; ``None`` in rate mode).
        mean_output: time-averaged output ``[B, K]``, the prediction.
        spike_counts: spikes per sample ``[B]`` for every neuron layer, by module name.
        neuron_counts: neurons per sample in every neuron layer.
        timesteps: T, the steps whose outputs are read.
        mode: ``"spike"`` or ``"rate"``.
        presteps: pre-simulation steps run before the T read steps (SRP/COS; 0 otherwise). Their outputs are
            discarded but their spikes are counted in ``spike_counts``.
    """

    outputs: Tensor | None
    mean_output: Tensor
    spike_counts: dict[str, Tensor]
    neuron_counts: dict[str, int]
    timesteps: int
    mode: str
    presteps: int = 0

    @property
    def total_timesteps(self) -> int:
        """Latency of one answer: ``presteps + T``."""
        return self.presteps + self.timesteps

    def firing_rates(self) -> dict[str, float]:
        """Mean spikes per neuron per executed time step (``presteps + T`` steps), by layer."""
        return {
            name: float(c.mean()) / max(1, self.neuron_counts[name] * self.total_timesteps)
            for name, c in self.spike_counts.items()
        }

    def total_spikes(self) -> Tensor:
        """Spikes per sample over all layers ``[B]``."""
        return sum(self.spike_counts.values(), torch.zeros_like(self.mean_output[:, 0], dtype=torch.float64))

    def predictions(self) -> Tensor:
        return self.mean_output.argmax(dim=-1)


def check_input(x: object, name: str = "x") -> Tensor:
    """A floating tensor of at least 2 dims with finite values, or an InputError saying what is wrong."""
    if not isinstance(x, Tensor):
        raise InputError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if not x.is_floating_point():
        raise InputError(f"{name} must be a floating-point tensor, got dtype {x.dtype} (convert with .float())")
    if x.dim() < 2:
        raise InputError(f"{name} must be a batch [B, ...], got shape {tuple(x.shape)} (add a batch dim)")
    if not torch.isfinite(x).all():
        raise InputError(f"{name} contains NaN or Inf values")
    return x


def _guard_memory(snn: SpikingModel, x: Tensor, T: int) -> None:
    """Estimate the bytes of a spike-mode run before it allocates them; chunk parallel runs finer or refuse.

    The per-sample sizes are measured once per input shape and cached on ``snn``.
    """
    key = (tuple(x.shape[1:]), x.dtype, x.device, id(snn.net.graph), snn.execution)
    cached = snn.__dict__.get("_sizes")
    if cached is None or cached[0] != key:
        widest, total, classes = call_checked(lambda xb: snn.sample_sizes(xb[:1]), x, "the SNN")
        cached = (key, widest, total, classes)
        snn.__dict__["_sizes"] = cached
    _, widest, total, classes = cached
    steps = snn.presteps + T
    decided = memory_plan(
        timesteps=steps,
        batch=x.shape[0],
        chunk=snn.default_chunk(steps, x.device),
        widest=widest,
        total=total,
        classes=classes,
        itemsize=x.element_size(),
        parallel=snn.execution == "parallel",
        device=x.device,
    )
    snn.__dict__["_chunk_cap"] = decided.chunk


def simulate(
    snn: SpikingModel, x: Tensor, timesteps: int | None = None, *, mode: str = "spike", record: bool = True
) -> SimResult:
    """Simulate ``snn`` for T steps on an analog batch ``x`` ``[B, ...]`` fed as the same current every step.

    ``mode="spike"`` materialises spikes at every layer (per-step outputs); ``mode="rate"`` (parallel SNNs only)
    propagates time means and costs about one ANN forward. Both fire the same level at every neuron, so spike
    counts are identical and ``mean_output`` differs only by the float round-off of the layers after the last
    neurons (docs/parallel.md, "Float32"). Neuron state is reset on every call.
    """
    if not isinstance(snn, SpikingModel):
        raise ConfigError(f"simulate expects a model returned by ann2snn.convert, got {type(snn).__name__}")
    if mode not in MODES:
        raise ConfigError(f"mode={mode!r} is not supported; choose 'spike' or 'rate'")
    T = snn.timesteps if timesteps is None else timesteps
    check_int("timesteps", T)
    x = check_input(x)
    param = next(snn.parameters(), None)
    if param is not None:
        x = x.to(device=param.device, dtype=param.dtype)
    if mode == "spike":
        _guard_memory(snn, x, T)
    snn.set_record(record)
    try:
        with torch.no_grad():
            if mode == "rate":
                mean = call_checked(lambda xb: snn.forward_rate(xb, T), x, "the SNN")
                outputs = None
            else:
                P = snn.presteps
                outputs = call_checked(lambda xb: snn(xb.unsqueeze(0).expand((P + T,) + xb.shape)), x, "the SNN")
                outputs = outputs[P:]
                mean = outputs.mean(dim=0)
        neurons = snn.neurons()
        counts = {
            n: (
                m.spike_count
                if m.spike_count is not None
                else torch.zeros(x.shape[0], dtype=torch.float64, device=x.device)
            )
            for n, m in neurons.items()
        }
        sizes = {n: m.num_neurons for n, m in neurons.items()}
    finally:
        snn.set_record(False)
        snn.__dict__.pop("_chunk_cap", None)
    return SimResult(outputs, mean, counts, sizes, T, mode, snn.presteps)
