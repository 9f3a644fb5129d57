"""Li et al. 2021 baselines (calibrate/li.py): the corrected IF neuron and bias / potential correction."""

from __future__ import annotations

import copy

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

import ann2snn as a2s
from ann2snn.calibrate import CalibratedIFNeuron, calibrate_li
from ann2snn.config import ConversionConfig
from ann2snn.errors import CalibrationError, ConfigError
from ann2snn.layers.neurons import IFNeuron


def _run(neuron: nn.Module, currents: torch.Tensor) -> torch.Tensor:
    neuron.reset()
    return torch.stack([neuron(c) for c in currents])


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 12), st.sampled_from([0.0, 0.5]), st.integers(0, 2**31 - 1))
def test_corrected_neuron_equals_if_with_shifted_input_and_potential(T: int, v_init: float, seed: int) -> None:
    g = torch.Generator().manual_seed(seed)
    theta = torch.rand(3, 1, 1, generator=g, dtype=torch.float64) + 0.2
    currents = torch.randn(T, 4, 3, 2, 2, generator=g, dtype=torch.float64)
    # no correction: exactly the IF neuron
    assert torch.equal(
        _run(CalibratedIFNeuron(theta, v_init=v_init), currents), _run(IFNeuron(theta, v_init=v_init), currents)
    )
    # bias b: the IF neuron fed I + b
    bias = torch.randn(3, 1, 1, generator=g, dtype=torch.float64) * 0.3
    got = _run(CalibratedIFNeuron(theta, v_init=v_init, bias=bias), currents)
    assert torch.equal(got, _run(IFNeuron(theta, v_init=v_init), currents + bias))
    # potential offset δ (scalar θ): the IF neuron with v_init + δ/θ
    th, delta = 0.7, 0.2
    got = _run(CalibratedIFNeuron(th, v_init=v_init, v_offset=delta), currents)
    want = _run(IFNeuron(th, v_init=v_init + delta / th), currents)
    torch.testing.assert_close(got, want, rtol=0, atol=0)


def _model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(1, 6, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(6 * 16, 10), nn.ReLU(), nn.Linear(10, 3)
    )


def _data(n: int = 3) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    return [torch.rand(16, 1, 4, 4, generator=g) for _ in range(n)]


def _first_site_error(ann: nn.Module, snn: a2s.SpikingModel, data: list[torch.Tensor]) -> float:
    """Mean |per-channel error| of the first site: ClipReLU(θ) ANN output vs the SNN's time-mean output."""
    name, neuron = next(iter(snn.neurons().items()))
    T = snn.timesteps
    outs: list[torch.Tensor] = []
    hook = neuron.register_forward_hook(lambda m, i, o: outs.append(o))
    errs = []
    with torch.no_grad():
        for x in data:
            outs.clear()
            snn(x.unsqueeze(0).expand(T, *x.shape))
            snn_mean = torch.stack(outs).mean(0)
            ref = torch.minimum(torch.relu(ann[0](x)), neuron.threshold)
            errs.append((ref - snn_mean).mean(dim=(0, 2, 3)))
    hook.remove()
    return float(torch.stack(errs).mean(0).abs().mean())


@pytest.mark.parametrize("calibration", ["li_bias", "li_potential"])
def test_li_correction_reduces_the_mean_error(calibration: str) -> None:
    ann, data = _model(), _data()
    cfg = ConversionConfig(method="serial", timesteps=4, v_init=0.0, threshold_mode="mse", per_channel=True)
    plain = a2s.convert(ann, cfg, calibration_data=data)
    fixed = a2s.convert(ann, cfg.replace(calibration=calibration), calibration_data=data)
    assert all(type(m) is CalibratedIFNeuron for m in fixed.neurons().values())
    before, after = _first_site_error(ann, plain, data), _first_site_error(ann, fixed, data)
    assert before > 0.01  # v_init = 0 and a floor quantizer: a clear negative bias to fix (sanity negative)
    assert after < 0.5 * before, (before, after)
    assert any(line.startswith("Li ") for line in fixed.log)


def test_li_does_not_mutate_and_checks_inputs() -> None:
    ann, data = _model(), _data()
    snn = a2s.convert(ann, ConversionConfig(method="serial", timesteps=2), calibration_data=data)
    state = copy.deepcopy(snn.state_dict())
    out = calibrate_li(snn, ann, data, mode="potential", progress=False)
    assert out is not snn and all(type(m) is IFNeuron for m in snn.neurons().values())
    assert all(torch.equal(v, snn.state_dict()[k]) for k, v in state.items())
    with pytest.raises(CalibrationError, match="no batches"):
        calibrate_li(snn, ann, [], progress=False)
    with pytest.raises(ConfigError):
        calibrate_li(snn, ann, data, mode="weights", progress=False)
    par = a2s.convert(ann, ConversionConfig(method="parallel", timesteps=2), calibration_data=data)
    with pytest.raises(ConfigError, match="serial"):
        calibrate_li(par, ann, data, progress=False)


def test_nir_export_refuses_corrected_neurons() -> None:
    pytest.importorskip("nir")
    from ann2snn.errors import ExportError
    from ann2snn.export.nir import to_nir

    ann, data = _model(), _data()
    snn = a2s.convert(ann, ConversionConfig(method="serial", timesteps=2, calibration="li_bias"), calibration_data=data)
    with pytest.raises(ExportError):
        to_nir(snn, (1, 4, 4))
