"""Everything stays on the model's device: no hidden host round trips on the per-batch paths.

There is no second device here, so a guard watches every torch call made from ann2snn's own code while it
converts with calibration data, DA-calibrates (with weight refit), Li-calibrates a serial SNN, simulates and
evaluates:

- ``.cpu()`` / ``.numpy()`` / ``.to("cpu")`` (a device → host copy) is always a failure;
- a tensor factory (``torch.zeros``, ``randperm``, ``linspace``, ...) or a ``torch.Generator`` without ``device=``
  is a failure (it lands on the CPU whatever the model's device); ``torch.as_tensor(t)`` of a tensor keeps its
  device and is fine;
- a host sync (``.item()``, ``.tolist()``, ``float()`` / ``int()`` / ``bool()`` of a tensor, ``torch.equal``,
  ``nonzero``, a boolean-mask index ``x[mask]``) is counted by call site.
  The pipeline is run on 2 and on 5 calibration / evaluation batches: a call site whose count grows with the
  batches syncs once per batch, a failure unless it validates the user's input batch (the checks that raise
  :class:`~ann2snn.errors.InputError` on the batch as given, before it is moved to the device).

Adding ``.cpu()``, a per-batch ``.item()`` or a ``torch.zeros(n)`` to any of these paths fails this module.
"""

from __future__ import annotations

import sys
import types
from collections import Counter
from typing import Any

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from torch import Tensor, nn
from torch.overrides import TorchFunctionMode

import ann2snn as a2s
from ann2snn.calibrate import calibrate_da, calibrate_li
from ann2snn.calibrate.observers import ActivationObserver, percentile_rows
from ann2snn.errors import CalibrationError

SYNCS = {
    Tensor.item, Tensor.tolist, Tensor.__float__, Tensor.__int__, Tensor.__bool__, Tensor.__index__, torch.equal,
    Tensor.equal, torch.nonzero, Tensor.nonzero, torch.masked_select, Tensor.masked_select, torch.unique,
}  # fmt: skip
COPIES = {Tensor.cpu, Tensor.numpy}
# Host-only code paths that other devices never take: NumPy's per-row argsort of a CPU tensor (a zero-copy view;
# on any other device the rows are sorted by torch on that device).
HOST_ONLY = ("estimators.py:_argsort_rows<",)
FACTORIES = {
    torch.tensor, torch.as_tensor, torch.zeros, torch.ones, torch.full, torch.empty, torch.arange, torch.linspace,
    torch.logspace, torch.eye, torch.rand, torch.randn, torch.randint, torch.randperm,
}  # fmt: skip
# Module constructors turn Python numbers into buffers, which move with the module (``.to(device)``) right after.
CONSTRUCTORS = ("neurons.py:_as_buffer<", "activations.py:_threshold_tensor<")
# The per-batch syncs allowed: validating the user's batch as given (typically a host tensor from a loader, before
# it is moved to the device), which raises InputError naming the batch.
INPUT_CHECKS = (
    "observers.py:iter_input_batches<",
    "runner.py:check_input<metrics.py:evaluate",
    "validation.py:check_labels<metrics.py:evaluate",
    "metrics.py:_check_outputs<metrics.py:evaluate",  # labels below the model's output count
    # the weight refit solves once per layer, after the batch loop
    "refit.py:differs<refit.py:solve",
    "refit.py:ridge_refit<refit.py:solve",
)


def _caller() -> str | None:
    """``file.py:function`` of the innermost ann2snn frame calling into torch (then ``<`` and the ann2snn frame
    that called it, if any), or None outside ann2snn."""
    frame = sys._getframe(2)
    found: list[str] = []
    while frame is not None and len(found) < 2:
        module = frame.f_globals.get("__name__", "")
        if module.startswith("ann2snn"):
            found.append(f"{frame.f_code.co_filename.rsplit('/', 1)[-1]}:{frame.f_code.co_name}")
        elif not found and not module.startswith("torch"):
            return None
        frame = frame.f_back
    return "<".join(found) or None


class HostGuard(TorchFunctionMode):
    """Records device → host copies, device-less factories and host syncs made from ann2snn code."""

    def __init__(self) -> None:
        super().__init__()
        self.violations: list[str] = []
        self.syncs: Counter[str] = Counter()

    def __torch_function__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        kwargs = kwargs or {}
        kind = func
        if func is Tensor.__getitem__ and _bool_index(args[1]):  # x[mask]: sized by a host read of the mask
            kind = torch.masked_select
        where = _caller() if kind in SYNCS | COPIES | FACTORIES or kind is Tensor.to else None
        if where is not None:
            name = getattr(kind, "__name__", str(kind))
            if where.startswith(HOST_ONLY):
                pass
            elif kind in COPIES or (kind is Tensor.to and "cpu" in (*args[1:2], kwargs.get("device"))):
                self.violations.append(f"{where}: .{name}() copies to the host")
            elif kind in SYNCS:
                self.syncs[where] += 1
            elif kind in FACTORIES and "device" not in kwargs and not where.startswith(CONSTRUCTORS):
                if not (args and isinstance(args[0], Tensor)):  # as_tensor(t) / tensor(t) keep t's device
                    self.violations.append(f"{where}: torch.{name}() without device=")
        return func(*args, **kwargs)


def _bool_index(index: Any) -> bool:
    parts = index if isinstance(index, tuple) else (index,)
    return any(isinstance(p, Tensor) and p.dtype == torch.bool for p in parts)


def _guarded_generator(guard: HostGuard) -> Any:
    real = torch.Generator

    def make(*args: Any, **kwargs: Any) -> torch.Generator:
        where = _caller()
        if where is not None and "device" not in kwargs and not args:
            guard.violations.append(f"{where}: torch.Generator() without device=")
        return real(*args, **kwargs)

    return make


class Net(nn.Module):
    """conv-BN-ReLU ×2, max-pool, flatten, linear-ReLU, linear: plain ReLUs take their θ from data."""

    def __init__(self) -> None:
        super().__init__()
        self.c1, self.b1 = nn.Conv2d(1, 6, 3, padding=1), nn.BatchNorm2d(6)
        self.c2, self.b2 = nn.Conv2d(6, 8, 3, padding=1), nn.BatchNorm2d(8)
        self.fc1, self.fc2 = nn.Linear(8 * 4 * 4, 16), nn.Linear(16, 4)

    def forward(self, x: Tensor) -> Tensor:
        x = torch.relu(self.b1(self.c1(x)))
        x = nn.functional.max_pool2d(torch.relu(self.b2(self.c2(x))), 2)
        return self.fc2(torch.relu(self.fc1(x.flatten(1))))


def _pipeline(n_batches: int, monkeypatch: pytest.MonkeyPatch) -> HostGuard:
    torch.manual_seed(0)
    ann = Net().eval()
    batches = [torch.rand(6, 1, 8, 8, generator=torch.Generator().manual_seed(i)) for i in range(n_batches)]
    labelled = [(x, torch.arange(6) % 4) for x in batches]
    guard = HostGuard()
    with monkeypatch.context() as patch, guard:
        patch.setattr(torch, "Generator", _guarded_generator(guard))
        for mode in ("percentile", "mse"):
            cfg = a2s.ConversionConfig(method="parallel", timesteps=4, per_channel=True, threshold_mode=mode)
            snn = a2s.convert(ann, cfg, calibration_data=batches, max_batches=None)
        for estimator, refit in (("match", True), ("ema", False)):
            cal = calibrate_da(snn, ann, batches, estimator=estimator, max_batches=None, progress=False, refit=refit)
        for mode in ("spike", "rate"):
            a2s.simulate(cal, batches[0], 4, mode=mode)
        a2s.evaluate(ann, cal, labelled, timesteps=(2, 4))
        serial = a2s.convert(ann, a2s.ConversionConfig(method="serial", timesteps=4), calibration_data=batches)
        for mode in ("bias", "potential"):
            li = calibrate_li(serial, ann, batches, mode=mode, max_batches=None, progress=False)
        a2s.evaluate(None, li, labelled, timesteps=(2, 4), mode="spike")
    return guard


def test_no_host_round_trip_in_convert_calibrate_simulate_evaluate(monkeypatch: pytest.MonkeyPatch) -> None:
    few, many = _pipeline(2, monkeypatch), _pipeline(5, monkeypatch)
    assert few.violations == [] and many.violations == [], sorted(set(few.violations + many.violations))
    per_batch = {site for site in few.syncs | many.syncs if many.syncs[site] > few.syncs[site]}
    assert all(site.startswith(INPUT_CHECKS) for site in per_batch), sorted(per_batch)
    assert len(per_batch) >= 3, "the guard missed the per-batch input checks: it is not watching ann2snn's calls"


def test_guard_catches_a_host_copy_and_a_per_batch_sync(monkeypatch: pytest.MonkeyPatch) -> None:
    """The guard itself: an observer update (as if in ann2snn) that copies to the host and syncs per batch."""
    real_update = ActivationObserver.update

    def leaky_update(self: ActivationObserver, z: Tensor) -> None:
        self.last_max = float(z.max())  # type: ignore[attr-defined]
        real_update(self, z.cpu())

    as_ann2snn = types.FunctionType(
        leaky_update.__code__, {**globals(), "__name__": "ann2snn.leak"}, "leaky_update", None, leaky_update.__closure__
    )
    monkeypatch.setattr(ActivationObserver, "update", as_ann2snn)
    few, many = _pipeline(2, monkeypatch), _pipeline(5, monkeypatch)
    assert any("leaky_update<" in v and v.endswith(".cpu() copies to the host") for v in few.violations)
    leaky = [s for s in many.syncs if s.startswith("test_device_residency.py:leaky_update<")]
    assert leaky and all(many.syncs[s] > few.syncs[s] for s in leaky), leaky


@settings(max_examples=60, deadline=None)
@given(
    data=hnp.arrays(
        np.float32,
        st.tuples(st.integers(1, 3), st.integers(1, 64)),
        elements=st.floats(0, 1e4, width=32) | st.just(np.float32(0)),
    ),
    q=st.floats(0, 100) | st.sampled_from([0.0, 50.0, 99.0, 99.9, 100.0]),
)
def test_percentile_rows_is_bitwise_numpy_linear_percentile(data: np.ndarray, q: float) -> None:
    expected = np.percentile(data, q, axis=1).astype(np.float32)
    got = percentile_rows(torch.from_numpy(data), q).numpy()
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got.view(np.int32), expected.view(np.int32))


def test_percentile_rows_closed_form() -> None:
    row = torch.arange(11, dtype=torch.float32).flip(0).unsqueeze(0)  # 10, 9, ..., 0: order does not matter
    assert percentile_rows(row, 50.0).tolist() == [5.0]
    assert percentile_rows(row, 25.0).tolist() == [2.5]
    assert percentile_rows(row, 100.0).tolist() == [10.0]
    assert percentile_rows(row, 0.0).tolist() == [0.0]
    assert percentile_rows(torch.tensor([[3.0], [7.0]]), 99.9).tolist() == [3.0, 7.0]  # one value per row
    with pytest.raises(CalibrationError, match=r"\[C, N\]"):
        percentile_rows(torch.zeros(3), 50.0)
    with pytest.raises(CalibrationError, match="percentile"):
        percentile_rows(torch.zeros(1, 3), 101.0)
