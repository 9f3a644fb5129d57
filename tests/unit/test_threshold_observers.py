"""Thresholds from data: the MSE search (calibrate/mse.py) and threshold_mode="mse" in convert."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

import ann2snn as a2s
from ann2snn.calibrate.mse import mse_threshold, quantization_mse
from ann2snn.calibrate.observers import ActivationObserver
from ann2snn.config import ConversionConfig
from ann2snn.errors import CalibrationError


def _analytic_mse(theta: float, T: int, shift: float, rate: float = 1.0) -> float:
    """E[(a − q(a))²] for a ~ Exponential(rate), by numerical integration on a fine grid (independent of mse.py)."""
    x = np.linspace(0.0, 25.0 / rate, 50_001)
    pdf = rate * np.exp(-rate * x)
    q = np.clip(np.floor(x * T / theta + shift), 0, T) * theta / T
    return float(np.trapezoid((x - q) ** 2 * pdf, x))


@pytest.mark.parametrize(("T", "shift"), [(1, 0.5), (4, 0.5), (4, 0.0), (16, 0.5)])
def test_mse_search_finds_the_known_optimum(T: int, shift: float) -> None:
    thetas = np.linspace(0.5, 8.0, 301)
    errors = [_analytic_mse(t, T, shift) for t in thetas]
    best = float(thetas[int(np.argmin(errors))])
    g = torch.Generator().manual_seed(0)
    samples = torch.empty(1, 200_000, dtype=torch.float64).exponential_(1.0, generator=g)
    found = float(mse_threshold(samples, T, shift)[0])
    assert abs(found - best) < 0.05 * best, (found, best)
    # its analytic error is within 1% of the optimum; the max threshold (Diehl) is far worse (sanity negative)
    assert _analytic_mse(found, T, shift) <= 1.02 * min(errors)
    assert _analytic_mse(float(samples.max()), T, shift) > 1.5 * min(errors)


@settings(max_examples=25, deadline=None)
@given(st.floats(0.1, 10.0), st.integers(1, 8), st.integers(0, 2**31 - 1))
def test_mse_threshold_is_scale_equivariant_per_row(scale: float, T: int, seed: int) -> None:
    g = torch.Generator().manual_seed(seed)
    row = torch.rand(1, 2000, generator=g, dtype=torch.float64) ** 2
    samples = torch.cat([row, row * scale, torch.zeros(1, 2000, dtype=torch.float64)])
    th = mse_threshold(samples, T).double()
    torch.testing.assert_close(th[1], th[0] * scale, rtol=1e-4, atol=0)
    assert th[2] == 1.0  # a dead channel gets θ = 1
    err = quantization_mse(samples[:1], th[:1], T)
    assert err <= quantization_mse(samples[:1], samples[:1].max(dim=1).values, T) + 1e-12


def test_mse_threshold_rejects_empty_samples() -> None:
    with pytest.raises(CalibrationError):
        mse_threshold(torch.zeros(2, 0), 4)


def test_observer_mse_mode_and_convert() -> None:
    obs = ActivationObserver(per_channel=True)
    obs.update(torch.randn(64, 3, 5, 5))
    th = obs.threshold("mse", timesteps=4)
    assert th.shape == (3, 1, 1) and bool(torch.all(th > 0)) and bool(torch.all(th <= obs.max.reshape(3, 1, 1)))
    torch.manual_seed(0)
    ann = nn.Sequential(nn.Linear(5, 8), nn.ReLU(), nn.Linear(8, 2))
    data = [torch.rand(32, 5) for _ in range(2)]
    snn = a2s.convert(ann, ConversionConfig(timesteps=4, threshold_mode="mse", per_channel=True), calibration_data=data)
    assert snn.sites[0].threshold_from == "mse per channel"
    # the threshold depends on T: more steps afford a larger θ
    th_t = [
        a2s.convert(ann, ConversionConfig(timesteps=T, threshold_mode="mse"), calibration_data=data)
        .neurons()["1"]
        .threshold
        for T in (1, 32)
    ]
    assert float(th_t[0]) < float(th_t[1])
