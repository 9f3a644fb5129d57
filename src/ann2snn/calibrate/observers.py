"""Observers that record activation statistics at activation sites to set thresholds from data."""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from contextlib import closing
from typing import Any

import torch
from torch import Tensor, nn

from ann2snn.errors import CalibrationError, InputError
from ann2snn.evaluate.progress import progress_bar
from ann2snn.limits import check_int
from ann2snn.validation import call_checked

_SAMPLE_CAP = 1 << 18  # values kept per batch and site for percentiles


def iter_input_batches(data: Iterable[Any] | None, max_batches: int | None = None) -> Iterator[Tensor]:
    """Input tensors from an iterable of batches (tensors, or (x, y) pairs); checks emptiness and NaN/Inf."""
    if data is None:
        raise CalibrationError(
            "calibration_data is required here: pass an iterable of input batches "
            "(e.g. a DataLoader over a few hundred training images)"
        )
    check_int("max_batches", max_batches, none_ok=True)
    count = 0
    for batch in data:
        if max_batches is not None and count >= max_batches:
            break
        x = batch[0] if isinstance(batch, (tuple, list)) else batch
        if not isinstance(x, Tensor):
            raise InputError(f"calibration batch {count} is a {type(x).__name__}, expected a tensor")
        if not torch.isfinite(x).all():
            raise InputError(f"calibration batch {count} contains NaN or Inf values")
        count += 1
        yield x
    if count == 0:
        raise CalibrationError("calibration_data yielded no batches; pass at least one batch of inputs")


def check_batches_fit(model: nn.Module, batches: list[Tensor]) -> None:
    """Run ``model`` on the first sample of every batch: a batch it cannot take is an :class:`InputError`."""
    with torch.no_grad():
        for i, x in enumerate(batches):
            call_checked(lambda b: model(b[:1]), x, "the model", f"calibration batch {i}")


def percentile_rows(data: Tensor, q: float) -> Tensor:
    """The ``q``-th percentile (0 ≤ q ≤ 100) of every row of ``data`` ``[C, N]``, on ``data``'s device.

    Linear interpolation between the two order statistics around the virtual index ``(N − 1)·q/100``, computed
    in the data's dtype exactly as ``numpy.percentile(data, q, axis=1)`` (default ``method="linear"``) computes it
    for a Python float ``q``: ``a + (b − a)·γ`` for a fraction γ < 0.5, else ``b − (b − a)·(1 − γ)``; the results are
    bitwise equal. No host round trip: the order statistics come from ``torch.kthvalue`` on the device.

    Shape:
        ``data`` ``[C, N]`` (N ≥ 1) → ``[C]``.
    """
    if data.dim() != 2 or data.shape[1] == 0:
        raise CalibrationError(f"percentile_rows needs data [C, N] with N > 0, got shape {tuple(data.shape)}")
    if not 0.0 <= q <= 100.0:
        raise CalibrationError(f"percentile must be in [0, 100], got {q}")
    n = data.shape[1]
    virtual = (n - 1) * (q / 100)
    below = math.floor(virtual)
    if virtual >= n - 1:  # q = 100 (or round-off just below it): the row maximum
        return data.max(dim=1).values
    gamma = virtual - below
    a = torch.kthvalue(data, below + 1, dim=1).values
    b = torch.kthvalue(data, below + 2, dim=1).values
    diff = b - a
    if gamma < 0.5:
        return a + diff * torch.full((), gamma, dtype=data.dtype, device=data.device)
    return b - diff * torch.full((), 1 - gamma, dtype=data.dtype, device=data.device)


class ActivationObserver:
    """Running statistics of ``relu(z)`` at one site: exact max, and a seeded subsample for percentiles.

    ``per_channel`` treats dim 1 as channels (``[B, C, ...]``). Everything stays on the activations' device (the
    subsample's random positions too, drawn by a generator on that device).
    """

    def __init__(self, per_channel: bool = False, seed: int = 0) -> None:
        self.per_channel = per_channel
        self.max: Tensor | None = None
        self.samples: list[Tensor] = []
        self.feature_dims = 0
        self.seed = seed
        self._gen: torch.Generator | None = None

    def update(self, z: Tensor) -> None:
        a = torch.relu(z.detach()).float()
        self.feature_dims = a.dim() - 1
        if self.per_channel:
            values = a.transpose(0, 1).reshape(a.shape[1], -1)
            batch_max = values.max(dim=1).values
        else:
            values = a.reshape(1, -1)
            batch_max = values.max().reshape(1)
        self.max = batch_max if self.max is None else torch.maximum(self.max, batch_max)
        per_row = max(1, _SAMPLE_CAP // values.shape[0])
        if values.shape[1] > per_row:
            if self._gen is None:
                self._gen = torch.Generator(device=values.device).manual_seed(self.seed)
            idx = torch.randperm(values.shape[1], generator=self._gen, device=values.device)[:per_row]
            values = values[:, idx]
        self.samples.append(values)

    def _shape(self, t: Tensor) -> Tensor:
        if not self.per_channel:
            return t.reshape(())
        return t.reshape((-1,) + (1,) * (self.feature_dims - 1))

    def threshold(self, mode: str = "max", percentile: float = 99.9, timesteps: int = 8, shift: float = 0.5) -> Tensor:
        """Per-layer (scalar) or per-channel (``[C, 1, ...]``) threshold; zero entries fall back to the max.

        ``mode="mse"`` searches the θ of least quantization MSE for a neuron run ``timesteps`` steps with rounding
        ``shift`` (see :func:`ann2snn.calibrate.mse.mse_threshold`).
        """
        if self.max is None:
            raise CalibrationError("no data was observed at this site")
        if mode == "max":
            value = self.max.clone()
        elif mode == "mse":
            from ann2snn.calibrate.mse import mse_threshold

            value = mse_threshold(torch.cat(self.samples, dim=1), timesteps, shift)
        else:
            value = percentile_rows(torch.cat(self.samples, dim=1), float(percentile))
        top = self.max.max()
        fallback = torch.where(top > 0, top, torch.ones_like(top))
        value = torch.where(value > 0, value, torch.where(self.max > 0, self.max, fallback))
        return self._shape(value)


def record_site_inputs(
    model: nn.Module,
    sites: list[str],
    data: Iterable[Any],
    per_channel: bool = False,
    max_batches: int | None = None,
    *,
    progress: bool = False,
) -> dict[str, ActivationObserver]:
    """Run ``data`` through ``model`` (eval, no grad) and observe the input of each site module.

    ``progress`` reports the pass as :func:`ann2snn.evaluate.progress.progress_bar` does.
    """
    observers = {name: ActivationObserver(per_channel) for name in sites}
    hooks = [
        model.get_submodule(name).register_forward_hook(
            lambda _m, inputs, _out, obs=observers[name]: obs.update(inputs[0])
        )
        for name in sites
    ]
    param = next(model.parameters(), None)
    device = param.device if param is not None else torch.device("cpu")
    dtype = param.dtype if param is not None else torch.get_default_dtype()
    try:
        with torch.no_grad():
            total = len(data) if hasattr(data, "__len__") else max_batches  # type: ignore[arg-type]
            total = total if max_batches is None or total is None else min(total, max_batches)
            batches = progress_bar(
                iter_input_batches(data, max_batches), "thresholds from data", enabled=progress, total=total
            )
            with closing(batches):
                for i, x in enumerate(batches):
                    call_checked(model, x.to(device=device, dtype=dtype), "the model", f"calibration batch {i}")
    finally:
        for h in hooks:
            h.remove()
    return observers
