"""COS (offset-spike calibration): the v(0) shift on hand-worked cases and the whole network vs a reference."""

import pytest
import torch
from _baseline_reference import random_mlp, reference_run
from hypothesis import given, settings
from hypothesis import strategies as st

import ann2snn as a2s
from ann2snn.functional.baseline_neuron import cos_initial_shift
from ann2snn.layers.baseline_neurons import COSNeuron


def presim(currents, presteps=2, threshold=1.0):
    """Run a COS neuron through its pre-simulation and the first real step; return it."""
    n = COSNeuron(threshold, presteps=presteps)
    for c in currents:
        n(torch.tensor([c], dtype=torch.float64))
    n(torch.zeros(1, 1, dtype=torch.float64))  # first real step applies the rule
    return n


def test_fired_and_ended_below_zero_lowers_v0_by_theta():
    # θ = 1, ρ = 2: currents 0.75, -0.5 -> v 1.25 (spike) 0.25, then -0.25 < 0 after 1 spike: one spike too many.
    n = presim([[0.75], [-0.5]])
    assert n.shift.tolist() == [[-1.0]]
    # real run starts at 0.5 - 1 = -0.5; with zero input it does not fire
    assert n.v.tolist() == [[-0.5]]


def test_large_firing_potential_lowers_v0_further():
    # currents 2.5, -3: v 3.0 (spike, pre-reset 3.0) 2.0, then -1.0 < 0: shift down by 3.0 - 0.999 = 2.001 (> θ)
    n = presim([[2.5], [-3.0]])
    assert n.shift.item() == pytest.approx(-2.001, abs=1e-12)


def test_residual_above_threshold_raises_v0():
    # currents 0.25, 1.5: v 0.75 (silent), 2.25 (spike) 1.25 >= θ: one spike too few -> shift up by θ
    # (1.001 - 0.75 = 0.251 < θ, so the minimum shift θ applies)
    n = presim([[0.25], [1.5]])
    assert n.shift.tolist() == [[1.0]]


def test_saturated_neuron_gets_the_released_code_stand_in():
    # currents 1.75, 0.75: fires at both steps, ends at 1.0 >= θ; no silent step -> rest_max = -1000θ,
    # shift = 1.001θ + 1000θ: the neuron then fires at every real step
    n = presim([[1.75], [0.75]])
    assert n.shift.item() == pytest.approx(1001.001, abs=1e-9)
    outs = [n(torch.full((1, 1), -0.5, dtype=torch.float64)).item() for _ in range(5)]
    assert outs == [1.0] * 5


@pytest.mark.parametrize(
    "currents",
    [
        [[0.25], [0.25]],  # v 0.75, 1.0 (spike) 0: residual in [0, θ): no offset
        [[-0.75], [0.0]],  # v -0.25 < 0 but never fired: not an extra spike
        [[0.0], [0.0]],
    ],
)
def test_no_offset_no_shift(currents):
    assert presim(currents).shift.tolist() == [[0.0]]


def test_shift_is_per_channel_threshold_aware():
    th = torch.tensor([1.0, 2.0])
    v = torch.tensor([[-0.1, -0.1]])
    count = torch.ones(1, 2)
    fire_min = torch.tensor([[1.5, 2.5]])
    rest_max = torch.tensor([[0.0, 0.0]])
    assert cos_initial_shift(v, count, fire_min, rest_max, th).tolist() == [[-1.0, -2.0]]


def test_shift_down_by_theta_removes_exactly_one_spike():
    # The paper's premise: for the same input train, v(0) - θ removes one spike, v(0) + θ adds one
    # (for IF with soft reset, as long as the neuron fires at least once / stays below saturation).
    g = torch.Generator().manual_seed(0)
    cur = torch.rand(8, 500, generator=g, dtype=torch.float64) * 1.5 - 0.3

    def count(v0):
        v, c = v0.clone(), torch.zeros(500, dtype=torch.float64)
        for t in range(8):
            s, v = a2s.functional.if_step(v, cur[t], 1.0)
            c += s
        return c

    base = count(torch.full((500,), 0.5, dtype=torch.float64))
    down = count(torch.full((500,), -0.5, dtype=torch.float64))
    fired = base > 0
    assert torch.equal(down[fired], base[fired] - 1)


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 10_000), presteps=st.integers(0, 4), timesteps=st.integers(1, 6))
def test_network_matches_reference_algorithm(seed, presteps, timesteps):
    model = random_mlp(seed)
    x = torch.rand(7, 6, generator=torch.Generator().manual_seed(seed), dtype=torch.float64) * 2 - 0.5
    snn = a2s.convert(model, a2s.ConversionConfig(method="cos", presteps=presteps, timesteps=timesteps))
    res = a2s.simulate(snn, x)
    assert torch.equal(res.mean_output, reference_run(model, x, "cos", presteps, timesteps))
    assert res.total_timesteps == presteps + timesteps


def test_calibration_changes_the_network_output():
    changed = 0
    for seed in range(10):
        model = random_mlp(seed)
        x = torch.rand(16, 6, generator=torch.Generator().manual_seed(seed), dtype=torch.float64) * 2 - 0.5
        cos = a2s.simulate(a2s.convert(model, a2s.ConversionConfig(method="cos", presteps=3, timesteps=4)), x)
        ser = a2s.simulate(a2s.convert(model, a2s.ConversionConfig(method="serial", timesteps=4)), x)
        changed += int(not torch.equal(cos.mean_output, ser.mean_output))
    assert changed > 0
