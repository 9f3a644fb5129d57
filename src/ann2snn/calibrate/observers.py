"""Observers that record activation statistics at activation sites to set thresholds from data."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from ann2snn.errors import CalibrationError, InputError
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


class ActivationObserver:
    """Running statistics of ``relu(z)`` at one site: exact max, and a seeded subsample for percentiles.

    ``per_channel`` treats dim 1 as channels (``[B, C, ...]``).
    """

    def __init__(self, per_channel: bool = False, seed: int = 0) -> None:
        self.per_channel = per_channel
        self.max: Tensor | None = None
        self.samples: list[Tensor] = []
        self.feature_dims = 0
        self._gen = torch.Generator().manual_seed(seed)

    def update(self, z: Tensor) -> None:
        a = torch.relu(z.detach()).float().cpu()
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
            idx = torch.randperm(values.shape[1], generator=self._gen)[:per_row]
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
            data = torch.cat(self.samples, dim=1).numpy()
            value = torch.from_numpy(np.percentile(data, percentile, axis=1).astype(np.float32))
        fallback = float(self.max.max()) if float(self.max.max()) > 0 else 1.0
        value = torch.where(value > 0, value, torch.where(self.max > 0, self.max, torch.tensor(fallback)))
        return self._shape(value)


def record_site_inputs(
    model: nn.Module,
    sites: list[str],
    data: Iterable[Any],
    per_channel: bool = False,
    max_batches: int | None = None,
) -> dict[str, ActivationObserver]:
    """Run ``data`` through ``model`` (eval, no grad) and observe the input of each site module."""
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
            for i, x in enumerate(iter_input_batches(data, max_batches)):
                call_checked(model, x.to(device=device, dtype=dtype), "the model", f"calibration batch {i}")
    finally:
        for h in hooks:
            h.remove()
    return observers
