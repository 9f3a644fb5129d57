"""Signed IF neuron: negative spikes only after net positive spikes; closed form of its net count."""

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import ann2snn as a2s
from ann2snn import functional as F
from ann2snn.errors import ConfigError
from ann2snn.functional.baseline_neuron import signed_if_step, symmetric_neg_threshold
from ann2snn.layers.baseline_neurons import SignedIFNeuron


def run(neuron, currents):
    return [neuron(torch.tensor([[c]], dtype=torch.float64)).item() for c in currents]


def test_negative_spike_only_after_net_positive_spikes():
    # θ = 1, v(0) = 1/2, θ⁻ = 0: v 1.25 (+1) 0.25; -0.75 < 0 with net 1 (-1) 0.25; -0.75 with net 0: silent
    n = SignedIFNeuron(1.0)
    assert run(n, [0.75, -1.0, -1.0, 0.5]) == [1.0, -1.0, 0.0, 0.0]
    assert n.net.item() == 0 and n.v.item() == -0.25


def test_never_fires_negative_first():
    assert run(SignedIFNeuron(1.0), [-2.0, -2.0, -2.0]) == [0.0, 0.0, 0.0]


def test_snm_convention_with_v_init_zero():
    # v(0) = 0 -> symmetric θ⁻ = -θ (SNM): v 1.0 (+1) 0; -0.75 >= -1: silent; -1.5 < -1: (-1) -0.5
    assert symmetric_neg_threshold(0.0) == -1.0 and symmetric_neg_threshold(0.5) == 0.0
    n = SignedIFNeuron(2.0, v_init=0.0)
    assert run(n, [2.0, -1.5, -1.5]) == [2.0, 0.0, -2.0]
    assert n.v.item() == -1.0


def test_explicit_negative_threshold():
    n = SignedIFNeuron(1.0, neg_threshold=-0.5)  # v(0) = 0.5
    assert run(n, [0.75, -0.5, -0.5]) == [1.0, 0.0, -1.0]  # v 0.25, -0.25 (>= -0.5), -0.75 < -0.5


@settings(max_examples=40, deadline=None)
@given(steps=st.lists(st.integers(-15, 15), min_size=1, max_size=24))
def test_net_count_tracks_rounded_running_sum(steps):
    # With v(0) = θ/2, θ⁻ = 0 and |I| < θ, the net count after t steps is max(0, floor(S(t)/θ + 1/2)), S the running
    # input sum: the signed neuron rounds the running sum like QCFS (without the upper clip). Dyadic inputs: exact.
    xs = torch.tensor(steps, dtype=torch.float64) / 16  # |I| <= 15/16 < θ = 1
    v = torch.full((1,), 0.5, dtype=torch.float64)
    net = torch.zeros(1, dtype=torch.float64)
    total = 0.0
    for x in xs:
        _, v, net = signed_if_step(v, x.view(1), 1.0, net, 0.0)
        total += float(x)
        assert net.item() == max(0, math.floor(total + 0.5))


def test_plain_if_does_not_track_the_running_sum():
    # Sanity negative for the property above: the unsigned neuron keeps a spike it should take back.
    v = torch.full((1,), 0.5, dtype=torch.float64)
    count = 0.0
    for x in (0.75, -0.75):
        s, v = F.if_step(v, torch.tensor([x], dtype=torch.float64), 1.0)
        count += s.item()
    assert count == 1 and math.floor(0.0 + 0.5) == 0


def test_counts_negative_spikes_as_events_and_resets():
    n = SignedIFNeuron(1.0)
    n.record = True
    run(n, [0.75, -1.0])
    assert n.spike_count.tolist() == [2.0]
    n.reset()
    assert n.v is None and n.net is None and n.spike_count is None


def test_conversion_uses_signed_neurons():
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))
    qann = a2s.prepare(model, a2s.QuantConfig(levels=4, threshold=1.0))
    cfg = a2s.ConversionConfig(method="serial", neuron="signed_if", neg_threshold=-0.25, timesteps=4)
    snn = a2s.convert(qann, cfg)
    neurons = list(snn.neurons().values())
    assert neurons and all(isinstance(m, SignedIFNeuron) and m.neg_fraction == -0.25 for m in neurons)
    assert a2s.simulate(snn, torch.rand(3, 4)).outputs.shape == (4, 3, 2)
    with pytest.raises(ConfigError, match="signed_if"):
        a2s.ConversionConfig(method="parallel", neuron="signed_if")
    with pytest.raises(ConfigError, match="neg_threshold"):
        a2s.ConversionConfig(method="serial", neuron="signed_if", neg_threshold=0.5)
