"""The parallel IF neuron (methods.md §3) against its closed form and the paper's matrix form."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from ann2snn import functional as F
from ann2snn.layers.neurons import ParallelIFNeuron

SETTINGS = settings(max_examples=40, deadline=None)


def closed_form(summed: float, timesteps: int, threshold: float) -> int:
    """``clamp(floor(S/θ + 1/2), 0, T)`` in Python arithmetic."""
    return min(max(math.floor(summed / threshold + 0.5), 0), timesteps)


def dyadic(gen: torch.Generator, shape: tuple[int, ...], low: int = -40, high: int = 80) -> torch.Tensor:
    """Multiples of 1/16: sums and divisions by powers of two are exact, so boundaries are hit exactly."""
    return torch.randint(low, high, shape, generator=gen).to(torch.float64) / 16


@SETTINGS
@given(
    seed=st.integers(0, 2**31 - 1),
    timesteps=st.integers(1, 32),
    threshold=st.sampled_from([0.25, 0.5, 1.0, 2.0, 4.0]),
)
def test_level_matches_closed_form_including_boundaries(seed, timesteps, threshold):
    gen = torch.Generator().manual_seed(seed)
    summed = dyadic(gen, (200,))
    level = F.parallel_if_level(summed, timesteps, threshold)
    expected = [closed_form(s, timesteps, threshold) for s in summed.tolist()]
    assert level.tolist() == expected
    # Rate mode gives the same level from the mean current Ī = S/T (exact here: the S are dyadic, T·(S/T) = S
    # is checked against the closed form directly rather than assumed).
    rate = F.rate_level(summed / timesteps, timesteps, threshold)
    exact = (summed / timesteps) * timesteps == summed
    assert torch.equal(rate[exact], level[exact])


def test_boundary_rounds_up_and_clamps():
    # S/θ + 1/2 exactly integer → floor keeps it: S = 0.5θ fires once; S = −0.5θ does not fire.
    s = torch.tensor([-1.0, -0.5, 0.0, 0.49, 0.5, 1.5, 3.49, 3.5, 100.0], dtype=torch.float64)
    assert F.parallel_if_level(s, 3, 1.0).tolist() == [0, 0, 0, 0, 1, 2, 3, 3, 3]


@SETTINGS
@given(
    seed=st.integers(0, 2**31 - 1),
    timesteps=st.integers(1, 16),
    threshold=st.sampled_from([0.5, 1.0, 2.0]),
)
def test_paper_matrix_form_gives_the_back_ordered_train(seed, timesteps, threshold):
    """Paper form: ``m = Λ_pc·I + b``, ``(Λ_pc)_{x,j} = 1/(T−x+1)``, ``b_x = ψ/(T−x+1)``, ``s_x = H(m_x − θ)``."""
    gen = torch.Generator().manual_seed(seed)
    T = timesteps
    currents = dyadic(gen, (T, 50), -8, 24)  # I(t), time-varying
    x = torch.arange(1, T + 1, dtype=torch.float64)
    lam = (1.0 / (T - x + 1)).view(T, 1).expand(T, T)  # every row sums all T currents, scaled
    membrane = lam @ currents + ((threshold / 2) / (T - x + 1)).view(T, 1)
    paper = (membrane >= threshold).to(torch.float64)
    level = F.parallel_if_level(currents.sum(0), T, threshold)
    ours = F.spikes_from_level(level, T, "back")
    # Division by (T − x + 1) is not exact for odd divisors: compare only where no product sits on a boundary.
    margin = (currents.sum(0) + threshold / 2) / threshold
    safe = (margin - margin.round()).abs() > 1e-9
    assert torch.equal(paper[:, safe], ours[:, safe])


@SETTINGS
@given(
    seed=st.integers(0, 2**31 - 1),
    timesteps=st.integers(1, 20),
    order=st.sampled_from(["front", "back"]),
    shape=st.sampled_from([(7,), (3, 4), (2, 3, 2, 2)]),
)
def test_spike_trains_are_sorted_binary_and_count_the_level(seed, timesteps, order, shape):
    gen = torch.Generator().manual_seed(seed)
    level = torch.randint(0, timesteps + 1, shape, generator=gen).to(torch.float32)
    spikes = F.spikes_from_level(level, timesteps, order)
    assert spikes.shape == (timesteps, *shape)
    assert set(spikes.unique().tolist()) <= {0.0, 1.0}
    assert torch.equal(spikes.sum(0), level)
    diff = spikes[1:] - spikes[:-1]
    assert bool((diff <= 0).all()) if order == "front" else bool((diff >= 0).all())
    # front and back are time reverses of each other
    other = F.spikes_from_level(level, timesteps, "back" if order == "front" else "front")
    assert torch.equal(spikes.flip(0), other)


def test_spike_train_examples():
    level = torch.tensor([0.0, 1.0, 3.0])
    front = F.spikes_from_level(level, 3, "front")
    back = F.spikes_from_level(level, 3, "back")
    assert front.T.tolist() == [[0, 0, 0], [1, 0, 0], [1, 1, 1]]
    assert back.T.tolist() == [[0, 0, 0], [0, 0, 1], [1, 1, 1]]


@SETTINGS
@given(seed=st.integers(0, 2**31 - 1), timesteps=st.integers(1, 12))
def test_per_channel_threshold_and_bias_broadcast(seed, timesteps):
    gen = torch.Generator().manual_seed(seed)
    summed = torch.randn(4, 3, 5, 5, generator=gen, dtype=torch.float64) * 4
    threshold = torch.rand(3, 1, 1, generator=gen, dtype=torch.float64) + 0.5
    bias = torch.randn(3, 1, 1, generator=gen, dtype=torch.float64) * 0.3
    level = F.parallel_if_level(summed, timesteps, threshold, bias=bias)
    for c in range(3):
        ref = F.parallel_if_level(summed[:, c] + timesteps * bias[c].item(), timesteps, threshold[c].item())
        assert torch.equal(level[:, c], ref)
    # The bias is a pre-activation shift: level(S, b) = level(S + T·b, 0).
    assert torch.equal(level, F.parallel_if_level(summed + bias * timesteps, timesteps, threshold))


@SETTINGS
@given(seed=st.integers(0, 2**31 - 1), levels=st.integers(1, 16))
def test_rate_level_at_t_equals_l_is_bit_identical_to_qcfs(seed, levels):
    gen = torch.Generator().manual_seed(seed)
    z = torch.randn(2, 3, 4, 4, generator=gen, dtype=torch.float64) * 3
    threshold = torch.rand(3, 1, 1, generator=gen, dtype=torch.float64) * 3 + 0.25
    rate = F.rate_from_level(F.rate_level(z, levels, threshold), levels, threshold)
    assert torch.equal(rate, F.qcfs(z, threshold, levels))


def _module_pair(threshold, timesteps, **kw):
    return ParallelIFNeuron(threshold, timesteps, **kw).double()


@SETTINGS
@given(
    seed=st.integers(0, 2**31 - 1),
    timesteps=st.integers(1, 12),
    order=st.sampled_from(["front", "back"]),
    per_channel=st.booleans(),
)
def test_module_spike_and_rate_modes_agree(seed, timesteps, order, per_channel):
    gen = torch.Generator().manual_seed(seed)
    T, B, C = timesteps, 3, 4
    threshold = (torch.rand(C, 1, 1, generator=gen, dtype=torch.float64) + 0.5) if per_channel else 1.5
    correction = torch.randn(C, 1, 1, generator=gen, dtype=torch.float64) * 0.1
    bias = torch.randn(C, 1, 1, generator=gen, dtype=torch.float64) * 0.1
    neuron = _module_pair(threshold, T, order=order, bias=bias, amplitude_correction=correction)
    neuron.record = True
    mean = torch.randn(B, C, 2, 2, generator=gen, dtype=torch.float64) * 2
    seq = mean.unsqueeze(0).expand(T, B, C, 2, 2).reshape(T * B, C, 2, 2)
    out = neuron(seq).reshape(T, B, C, 2, 2)
    spike_count = neuron.spike_count
    amplitude = neuron.threshold + correction
    level = F.parallel_if_level(seq.reshape(T, B, C, 2, 2).sum(0), T, neuron.threshold, bias=bias)
    assert torch.equal(out, F.spikes_from_level(level, T, order) * amplitude)
    neuron.reset()
    neuron.mode = "rate"
    rate = neuron(mean)
    # Same level from Σ_t I and from T·Ī except where a sum of T copies rounds across a boundary (measure zero).
    assert torch.allclose(out.mean(0), rate, rtol=0, atol=1e-12)
    assert torch.equal(neuron.spike_count, spike_count)
    assert torch.equal(spike_count, level.flatten(1).sum(1))
    assert neuron.num_neurons == C * 4


def test_module_rejects_batch_not_multiple_of_t():
    neuron = ParallelIFNeuron(1.0, 4)
    with pytest.raises(RuntimeError, match="multiple of T=4"):
        neuron(torch.zeros(6, 3))


def test_module_keeps_float64_threshold_exactly():
    theta = torch.tensor(1.2345678901234567, dtype=torch.float64)
    neuron = ParallelIFNeuron(theta, 4)
    assert neuron.threshold.dtype == torch.float64 and neuron.threshold.item() == theta.item()


def test_bias_change_after_first_call_is_seen():
    # The module may cache whether ψ_DA is zero; in-place updates (calibration) and reassignment must count.
    neuron = ParallelIFNeuron(1.0, 2)
    neuron.mode = "rate"
    x = torch.tensor([[0.2]])
    assert neuron(x).item() == 0.0  # floor(0.2·2 + 0.5) = 0
    neuron.bias.fill_(0.3)  # floor(0.5·2 + 0.5) = 1
    assert neuron(x).item() == 0.5
    neuron.bias = torch.tensor(0.0)
    assert neuron(x).item() == 0.0
    neuron.load_state_dict(
        {"threshold": torch.tensor(1.0), "bias": torch.tensor(0.3), "amplitude_correction": torch.tensor(0.0)}
    )
    assert neuron(x).item() == 0.5


def test_pure_functions_do_not_mutate_and_work_under_autograd():
    gen = torch.Generator().manual_seed(0)
    z = torch.randn(4, 3, generator=gen, dtype=torch.float64) * 3
    theta = torch.tensor([0.7, 1.0, 1.3], dtype=torch.float64)
    keep = z.clone()
    level = F.parallel_if_level(z, 4, theta, bias=torch.full((3,), 0.1, dtype=torch.float64))
    rate = F.rate_from_level(F.rate_level(z, 4, theta), 4, theta)
    spikes = F.spikes_from_level(level, 4, amplitude=theta)
    assert torch.equal(z, keep)  # the in-place fast path only touches fresh tensors
    zg = z.clone().requires_grad_(True)  # autograd path: same values, no in-place error
    assert torch.equal(F.rate_from_level(F.rate_level(zg, 4, theta), 4, theta), rate)
    assert torch.equal(F.parallel_if_level(zg, 4, theta, bias=torch.full((3,), 0.1, dtype=torch.float64)), level)
    ampg = theta.clone().requires_grad_(True)
    assert torch.equal(F.spikes_from_level(level, 4, amplitude=ampg), spikes)
    assert torch.equal(spikes, F.spikes_from_level(level, 4) * theta)
