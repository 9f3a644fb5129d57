"""SRP (residual-membrane-potential suppression): the neuron rule on hand-worked cases and the whole network."""

import pytest
import torch
from _baseline_reference import random_mlp, reference_run
from hypothesis import given, settings
from hypothesis import strategies as st

import ann2snn as a2s
from ann2snn.errors import ConfigError
from ann2snn.functional.baseline_neuron import srp_keep_mask
from ann2snn.layers.baseline_neurons import SRPNeuron


def run(neuron, currents):
    return torch.stack([neuron(c) for c in currents])


def test_srp_suppresses_neurons_without_residual_potential():
    # θ = 1, v(0) = 1/2, τ = 2 pre-simulation steps with different currents for three neurons:
    #   A: 0.75, -0.5  -> v 1.25 (spike) 0.25, -0.25  -> residual < 0: silenced
    #   B: 0.25,  0.5  -> v 0.75, 1.25 (spike) 0.25   -> residual > 0: kept
    #   C: 0.5,   0.0  -> v 1.0 (spike) 0.0, 0.0      -> residual 0 is "no residual": silenced
    pre = torch.tensor([[[0.75, 0.25, 0.5]], [[-0.5, 0.5, 0.0]]], dtype=torch.float64)
    real = torch.full((4, 1, 3), 0.75, dtype=torch.float64)
    n = SRPNeuron(1.0, presteps=2)
    out = run(n, torch.cat([pre, real]))
    assert out[:2, 0].tolist() == [[1.0, 0.0, 1.0], [0.0, 1.0, 0.0]]  # pre-simulation fires normally
    assert n.keep.tolist() == [[0.0, 1.0, 0.0]]
    # real run restarts from v(0) = 0.5: 1.25 (s) 0.25, 1.0 (s) 0, 0.75, 1.5 (s) -> B fires 1, 1, 0, 1
    assert out[2:, 0, 1].tolist() == [1.0, 1.0, 0.0, 1.0]
    assert out[2:, 0, 0].abs().sum() == 0 and out[2:, 0, 2].abs().sum() == 0


def test_keep_mask_threshold_is_relative_to_theta():
    th = torch.tensor([1.0, 4.0])
    v = torch.tensor([[0.002, 0.002]])  # above 1e-3·1 but below 1e-3·4
    assert srp_keep_mask(v, th).tolist() == [[1.0, 0.0]]


def test_zero_presteps_is_plain_if():
    x = torch.tensor([[0.3, -0.2, 0.9]])
    srp = SRPNeuron(1.0, presteps=0)
    ref = a2s.layers.IFNeuron(1.0)
    assert torch.equal(run(srp, [x] * 5), run(ref, [x] * 5))


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 10_000), presteps=st.integers(0, 4), timesteps=st.integers(1, 6))
def test_network_matches_reference_algorithm(seed, presteps, timesteps):
    model = random_mlp(seed)
    x = torch.rand(7, 6, generator=torch.Generator().manual_seed(seed), dtype=torch.float64) * 2 - 0.5
    snn = a2s.convert(model, a2s.ConversionConfig(method="srp", presteps=presteps, timesteps=timesteps))
    res = a2s.simulate(snn, x)
    expected = reference_run(model, x, "srp", presteps, timesteps)
    assert torch.equal(res.mean_output, expected)
    assert res.outputs.shape[0] == timesteps and res.total_timesteps == presteps + timesteps


def test_suppression_changes_the_network_output():
    # Sanity negative: with pre-simulation some neurons are silenced, so SRP is not serial IF.
    changed = 0
    for seed in range(10):
        model = random_mlp(seed)
        x = torch.rand(16, 6, generator=torch.Generator().manual_seed(seed), dtype=torch.float64) * 2 - 0.5
        srp = a2s.simulate(a2s.convert(model, a2s.ConversionConfig(method="srp", presteps=3, timesteps=4)), x)
        ser = a2s.simulate(a2s.convert(model, a2s.ConversionConfig(method="serial", timesteps=4)), x)
        changed += int(not torch.equal(srp.mean_output, ser.mean_output))
    assert changed > 0


def test_config_validation():
    with pytest.raises(ConfigError, match="presteps"):
        a2s.ConversionConfig(method="serial", presteps=2)
    with pytest.raises(ConfigError, match="presteps"):
        a2s.ConversionConfig(method="srp", presteps=-1)
    with pytest.raises(ConfigError, match="neuron='if'"):
        a2s.ConversionConfig(method="srp", presteps=2, neuron="lif")
    cfg = a2s.ConversionConfig(method="srp", presteps=3)
    assert a2s.ConversionConfig.from_dict(cfg.to_dict()) == cfg


def test_spikes_of_presimulation_are_counted():
    model = random_mlp(1)
    x = torch.rand(4, 6, dtype=torch.float64)
    snn = a2s.convert(model, a2s.ConversionConfig(method="srp", presteps=3, timesteps=2))
    res = a2s.simulate(snn, x)
    assert res.presteps == 3 and res.timesteps == 2 and res.total_timesteps == 5
    assert sum(float(c.sum()) for c in res.spike_counts.values()) > 0
    assert "presteps=3" in snn.summary()


def test_evaluate_firing_rates_count_presimulation_steps():
    """evaluate's firing rates divide the (pre-simulation-inclusive) spike counts by presteps + T steps."""
    model = random_mlp(1)
    x = torch.rand(8, 6, dtype=torch.float64)
    y = torch.zeros(8, dtype=torch.long)
    snn = a2s.convert(model, a2s.ConversionConfig(method="srp", presteps=3, timesteps=2))
    report = a2s.evaluate(model, snn, [(x, y)], timesteps=[2])
    res = a2s.simulate(snn, x)
    assert report.presteps == 3
    for name, rate in res.firing_rates().items():
        assert report.firing_rates[name] == pytest.approx(rate, rel=1e-12)
        expected = float(res.spike_counts[name].sum()) / (8 * res.neuron_counts[name] * 5)
        assert report.firing_rates[name] == pytest.approx(expected, rel=1e-12)
