"""The serial IF neuron against its closed form."""

import math

import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from ann2snn import functional as F
from ann2snn.layers import IFNeuron


def run_if(x: torch.Tensor, threshold: float, timesteps: int, v_init: float = 0.5, **kw) -> torch.Tensor:
    v = torch.full_like(x, v_init * threshold)
    count = torch.zeros_like(x)
    for _ in range(timesteps):
        s, v = F.if_step(v, x, threshold, **kw)
        count += s
    return count


@settings(max_examples=60, deadline=None)
@given(
    x=st.lists(st.floats(-2.0, 3.0, allow_nan=False), min_size=1, max_size=64),
    threshold=st.sampled_from([0.5, 1.0, 2.0, 4.0]),
    timesteps=st.integers(1, 32),
)
def test_constant_input_spike_count_closed_form(x, threshold, timesteps):
    xs = torch.tensor(x, dtype=torch.float64)
    count = run_if(xs, threshold, timesteps)
    for xi, ci in zip(xs.tolist(), count.tolist(), strict=True):
        arg = timesteps * xi / threshold + 0.5
        if abs(arg - round(arg)) < 1e-9:  # exactly on a boundary: float accumulation may land either side
            continue
        assert ci == min(max(math.floor(arg), 0), timesteps)


def test_closed_form_on_exact_dyadic_inputs():
    # Dyadic inputs accumulate without rounding, so even boundary cases are exact.
    xs = torch.arange(-8, 40, dtype=torch.float64) / 16  # −0.5 … 2.4375
    for timesteps in (1, 2, 4, 8, 16):
        count = run_if(xs, 1.0, timesteps)
        expected = torch.clamp(torch.floor(timesteps * xs + 0.5), 0, timesteps)
        assert torch.equal(count, expected)


def test_leak_one_equals_if_and_leak_below_one_fires_less():
    x = torch.rand(1000, dtype=torch.float64)
    assert torch.equal(run_if(x, 1.0, 8, leak=1.0), run_if(x, 1.0, 8))
    assert run_if(x, 1.0, 8, leak=0.8).sum() < run_if(x, 1.0, 8).sum()
    assert run_if(x, 1.0, 8, leak_delta=0.05).sum() < run_if(x, 1.0, 8).sum()


def test_reset_to_zero_differs_from_subtraction():
    x = torch.tensor([1.7])
    assert run_if(x, 1.0, 4, reset="subtract").item() == 4  # floor(4·1.7 + .5) capped at 4
    assert run_if(x, 1.0, 4, reset="zero").item() == 4
    y = torch.tensor([0.6])
    assert run_if(y, 1.0, 4, v_init=0.0, reset="subtract").item() == 2  # 0.6, 1.2→.2, .8, 1.4→.4
    assert run_if(y, 1.0, 4, v_init=0.0, reset="zero").item() == 2  # .6, 1.2→0, .6, 1.2→0


def test_if_module_counts_and_resets():
    n = IFNeuron(1.0)
    n.record = True
    x = torch.full((3, 5), 0.5)
    out = sum(n(x) for _ in range(4))
    assert torch.equal(out, torch.full((3, 5), 2.0))  # amplitude θ, 2 spikes
    assert n.spike_count.tolist() == [10.0, 10.0, 10.0] and n.num_neurons == 5
    n.reset()
    assert n.v is None and n.spike_count is None
