"""Leaks: λ = 1 is the IF neuron, set_leak per layer, the leaky StepReLU neuron, choose_leak."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

import ann2snn as a2s
from ann2snn.errors import ConfigError
from ann2snn.evaluate.leak import choose_leak
from ann2snn.functional import if_step
from ann2snn.functional import step_neuron as S
from ann2snn.layers.neurons import IFNeuron
from ann2snn.transforms.steprelu import get_leak, set_leak


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 10_000), st.integers(1, 12))
def test_leak_one_is_the_if_neuron(seed: int, T: int) -> None:
    g = torch.Generator().manual_seed(seed)
    currents = torch.randn(T, 5, 7, generator=g, dtype=torch.float64)
    a, b = IFNeuron(1.0, v_init=0.5, leak=1.0), IFNeuron(1.0, v_init=0.5)
    lif = IFNeuron(1.0, v_init=0.5, leak=0.9)
    outs = [(a(c), b(c), lif(c)) for c in currents]
    assert all(torch.equal(x, y) for x, y, _ in outs)
    assert torch.equal(a.v, b.v)
    # sanity negative: a real leak changes the potential
    assert not torch.equal(a.v, lif.v)


def test_exponential_and_linear_leak_closed_form() -> None:
    v = torch.tensor([0.2], dtype=torch.float64)
    s, v1 = if_step(v, torch.tensor([0.3], dtype=torch.float64), 1.0, leak=0.5)
    assert s.item() == 0 and v1.item() == pytest.approx(0.5 * 0.2 + 0.3, abs=0)
    s, v2 = if_step(v, torch.tensor([0.3], dtype=torch.float64), 1.0, leak_delta=0.25)
    assert s.item() == 0 and v2.item() == pytest.approx(0.2 + 0.3 - 0.25, abs=1e-16)


def test_leaky_fire_without_leak_is_the_closed_form() -> None:
    T, theta = 8, 1.0
    mean = (torch.arange(-40, 400, dtype=torch.float64) + 0.37) / 40  # no exact boundaries
    level, residual = S.leaky_fire(mean * T, theta * T, T)  # potential in units where Θ_spike = T·u
    assert torch.equal(level, S.step_level(mean, theta, T))
    assert torch.allclose(residual / T, S.step_overflow(mean, theta, T), atol=1e-12)


def test_leak_suppresses_weak_potentials_monotonically() -> None:
    v0 = torch.linspace(0, 12, 241, dtype=torch.float64)
    counts = [S.leaky_fire(v0, 1.0, 8, leak=lam)[0] for lam in (1.0, 0.95, 0.8, 0.6)]
    for stronger, weaker in zip(counts[1:], counts[:-1], strict=True):
        assert bool((stronger <= weaker).all())
    assert counts[-1].sum() < counts[0].sum()
    lin = S.leaky_fire(v0, 1.0, 8, leak_delta=0.3)[0]
    assert bool((lin <= counts[0]).all()) and lin.sum() < counts[0].sum()


def _step_snn(timesteps: int = 4) -> a2s.SpikingModel:
    torch.manual_seed(0)
    m = nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 3))
    q = a2s.prepare(m, a2s.QuantConfig(activation="steprelu", step=0.1, steps=timesteps)).eval()
    return a2s.convert(q, a2s.ConversionConfig(method="steprelu", timesteps=timesteps))


def test_set_leak_per_layer_returns_new_model() -> None:
    snn = _step_snn()
    names = list(snn.neurons())
    new = set_leak(snn, {names[0]: 0.8, names[1]: {"leak_delta": 0.05}})
    assert get_leak(snn) == dict.fromkeys(names, (1.0, 0.0))  # original untouched
    assert get_leak(new) == {names[0]: (0.8, 0.0), names[1]: (1.0, 0.05)}
    assert get_leak(set_leak(snn, 0.9)) == dict.fromkeys(names, (0.9, 0.0))
    assert "set_leak" in new.log[-1]
    x = torch.rand(20, 6) * 4
    assert not torch.equal(a2s.simulate(new, x).mean_output, a2s.simulate(snn, x).mean_output)
    # rate mode and spike mode agree with a leak too (the leak acts on the integrated potential)
    assert torch.allclose(a2s.simulate(new, x, mode="rate").mean_output, a2s.simulate(new, x).mean_output, atol=1e-5)


def test_set_leak_errors_and_serial_models() -> None:
    snn = _step_snn()
    with pytest.raises(ConfigError, match="no neuron layer"):
        set_leak(snn, {"nope": 0.9})
    with pytest.raises(ConfigError, match="leak"):
        set_leak(snn, 1.5)
    m = nn.Sequential(nn.Linear(4, 4), nn.ReLU(), nn.Linear(4, 2))
    q = a2s.prepare(m, a2s.QuantConfig(levels=4))
    serial = a2s.convert(q, a2s.ConversionConfig(method="serial", timesteps=4))
    leaky = set_leak(serial, 0.7)
    assert all(n.leak == 0.7 for n in leaky.neurons().values())
    per_model = a2s.convert(q, a2s.ConversionConfig(method="serial", neuron="lif", leak=0.7))
    x = torch.rand(8, 4)
    assert torch.equal(a2s.simulate(leaky, x, 4).mean_output, a2s.simulate(per_model, x, 4).mean_output)


def test_choose_leak_picks_the_best_and_ties_to_weakest() -> None:
    snn = _step_snn()
    g = torch.Generator().manual_seed(0)
    x = torch.rand(64, 6, generator=g) * 4
    y = a2s.simulate(snn, x).mean_output.argmax(-1)  # labels the leak-free SNN gets all right
    loader = [(x[:32], y[:32]), (x[32:], y[32:])]
    choice = choose_leak(None, snn, loader, (0.5, 1.0, 0.99999))
    assert choice.noisy_accuracy[1.0] == 100.0
    assert choice.leak == 1.0  # ties go to the weakest leak
    calls = []

    def factory(lam: float) -> a2s.SpikingModel:
        calls.append(lam)
        return set_leak(snn, lam)

    assert choose_leak(None, factory, loader, (1.0, 0.5)).leak == 1.0 and calls == [1.0, 0.5]
    with pytest.raises(ConfigError, match="clean_loader"):
        choose_leak(None, snn, loader, (1.0,), max_clean_drop=0.5)
