"""Li et al. (ICML 2021) calibration baselines for serial IF SNNs: bias and potential correction (methods.md §5).

Both measure, site by site in graph order (earlier sites already corrected), the error
``e = E[a_ref − a_snn]`` between the reference ANN's activation (QCFS / ClipReLU(θ), see
:mod:`ann2snn.calibrate.reference`) and the SNN's time-mean output over T steps on the calibration data, then

- ``mode="bias"``: add ``e`` per channel to the neuron's input current at every step (same as adding it to the
  bias of the layer before, when there is one);
- ``mode="potential"``: raise the initial potential of every neuron by ``T·e`` (per neuron: the same total charge
  as the bias correction, delivered once at t = 0).

Thresholds by MSE search are ``ConversionConfig(threshold_mode="mse")``. The corrected neurons are
:class:`CalibratedIFNeuron` (IF, reset by subtraction); NIR export refuses them rather than drop the corrections.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Iterable
from contextlib import closing
from typing import Any

import torch
from torch import Tensor, nn

from ann2snn.calibrate.observers import check_batches_fit, iter_input_batches
from ann2snn.calibrate.reference import channel_shape, reference_graph
from ann2snn.errors import CalibrationError, ConfigError
from ann2snn.evaluate.progress import progress_bar
from ann2snn.layers.activations import format_threshold
from ann2snn.layers.neurons import IFNeuron
from ann2snn.simulate.model import SpikingModel
from ann2snn.transforms.trace import set_submodule

LI_MODES = ("bias", "potential")


class CalibratedIFNeuron(IFNeuron):
    """IF neuron (reset by subtraction) with an input bias and a per-neuron initial-potential offset.

    ``v(0) = v_init·θ + v_offset``; every step ``v ← v + I + bias``, spike when ``v ≥ θ``, ``v ← v − θ·s``.

    Shape: input current ``[B, ...]`` → ``θ·spikes`` ``[B, ...]``; ``bias`` and ``v_offset`` broadcast against a
    sample (``[C, 1, 1]`` per channel, ``[C, H, W]`` per neuron).
    """

    bias: Tensor
    v_offset: Tensor

    def __init__(
        self,
        threshold: float | Tensor,
        *,
        v_init: float = 0.0,
        bias: float | Tensor = 0.0,
        v_offset: float | Tensor = 0.0,
    ) -> None:
        super().__init__(threshold, v_init=v_init)
        dtype, device = self.threshold.dtype, self.threshold.device  # the corrections live with the threshold
        self.register_buffer("bias", torch.as_tensor(bias, dtype=dtype, device=device).detach().clone())
        self.register_buffer("v_offset", torch.as_tensor(v_offset, dtype=dtype, device=device).detach().clone())

    def forward(self, current: Tensor) -> Tensor:
        if self.v is None or self.v.shape != current.shape:  # IFNeuron's start, shifted by v_offset
            self.v = torch.zeros_like(current) + self.v_init * self.threshold + self.v_offset
        return super().forward(current + self.bias)

    def extra_repr(self) -> str:
        return f"threshold={format_threshold(self.threshold)}, v_init={self.v_init}, corrected=True"


class _Stop(Exception):
    """Raised by a hook to end a forward pass right after the site being calibrated."""


def calibrate_li(
    snn: SpikingModel,
    ann: nn.Module,
    data: Iterable[Any] | None,
    *,
    mode: str = "bias",
    max_batches: int | None = 16,
    progress: bool = True,
) -> SpikingModel:
    """A copy of the serial IF ``snn`` with Li et al. bias (``mode="bias"``) or potential correction.

    Args:
        snn: a serial SNN with IF neurons (reset by subtraction) from :func:`ann2snn.convert`.
        ann: the ANN it was converted from (reference branch).
        data: calibration batches; at most ``max_batches`` are used.
        mode: ``"bias"`` (per-channel input bias) or ``"potential"`` (per-neuron initial potential).
        max_batches: cap on the batches read.
        progress: report progress (a bar on a terminal, a line per step in logs).

    Raises:
        CalibrationError: no batches, or ``ann`` is not the model ``snn`` came from.
        ConfigError: ``snn`` is not a serial IF SNN or ``mode`` is unknown.
    """
    if mode not in LI_MODES:
        raise ConfigError(f"mode={mode!r} is not supported; choose one of {', '.join(LI_MODES)}")
    if not isinstance(snn, SpikingModel) or snn.execution != "serial":
        raise ConfigError("Li calibration needs a serial SNN: convert with ConversionConfig(method='serial')")
    snn = copy.deepcopy(snn)
    reference = reference_graph(ann, snn)
    neurons: dict[str, CalibratedIFNeuron] = {}
    for name, m in snn.neurons().items():
        if type(m) is not IFNeuron or m.leak != 1.0 or m.leak_delta != 0.0 or m.reset_mode != "subtract":
            raise ConfigError(f"Li calibration needs IF neurons with reset by subtraction; '{name}' is {m!r}")
        neurons[name] = CalibratedIFNeuron(m.threshold, v_init=m.v_init)  # type: ignore[arg-type]
        set_submodule(snn.net, name, neurons[name])
    param = next(snn.parameters(), None)
    device = param.device if param is not None else torch.device("cpu")
    dtype = param.dtype if param is not None else torch.get_default_dtype()
    batches = [x.to(device=device, dtype=dtype) for x in iter_input_batches(data, max_batches)]
    check_batches_fit(reference, batches)
    start = time.perf_counter()
    ref_means = _reference_means(reference, list(neurons), batches)
    T = snn.timesteps
    what = f"Li calibration ({mode}) T={T}"
    with closing(progress_bar(list(neurons), what, enabled=progress, total=len(neurons))) as items:
        for name in items:
            snn_mean = _snn_mean(snn, name, batches, T)
            error = ref_means[name] - snn_mean  # per neuron, [C, ...]
            neuron = neurons[name]
            dtype = neuron.threshold.dtype
            if mode == "bias":
                per_channel = error.reshape(error.shape[0], -1).mean(dim=1)
                neuron.bias = per_channel.reshape(channel_shape(error.unsqueeze(0))).to(dtype)
            else:
                neuron.v_offset = (T * error).to(dtype)
    seconds = time.perf_counter() - start
    snn.reset()
    snn.log.append(
        f"Li {mode} correction of {len(neurons)} site(s) at T={T} on {len(batches)} batch(es) in {seconds:.2f} s"
    )
    snn.calibration_seconds = seconds  # type: ignore[assignment]
    return snn


def _reference_means(reference: nn.Module, sites: list[str], batches: list[Tensor]) -> dict[str, Tensor]:
    """Per-neuron mean (over the calibration set) of the reference activation at every site."""
    sums: dict[str, Tensor] = {}
    count = 0

    def hook(name: str) -> Any:
        def fn(_m: nn.Module, _inputs: Any, out: Tensor) -> None:
            s = out.detach().to(torch.float64).sum(dim=0)
            sums[name] = sums[name] + s if name in sums else s

        return fn

    handles = [reference.get_submodule(n).register_forward_hook(hook(n)) for n in sites]
    try:
        with torch.no_grad():
            for x in batches:
                reference(x)
                count += x.shape[0]
    finally:
        for h in handles:
            h.remove()
    missing = [n for n in sites if n not in sums]
    if missing:
        raise CalibrationError(f"Li calibration: site(s) {missing} were never reached by the calibration data")
    return {n: s / count for n, s in sums.items()}


def _snn_mean(snn: SpikingModel, site: str, batches: list[Tensor], T: int) -> Tensor:
    """Per-neuron time-and-data mean output of ``site``; each step stops right after that site."""
    total: Tensor | None = None
    count = 0

    def fn(_m: nn.Module, _inputs: Any, out: Tensor) -> None:
        nonlocal total
        s = out.detach().to(torch.float64).sum(dim=0)
        total = s if total is None else total + s
        raise _Stop

    handle = snn.net.get_submodule(site).register_forward_hook(fn)
    try:
        with torch.no_grad():
            for x in batches:
                snn.reset()
                for _ in range(T):
                    try:
                        snn.net(x)
                    except _Stop:
                        pass
                count += x.shape[0] * T
    finally:
        handle.remove()
        snn.reset()
    assert total is not None
    return total / count
