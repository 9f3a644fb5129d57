"""Max-pool lemma: the max over a window of sorted, equal-amplitude spike trains (thermometer codes) is the
thermometer code of the max level, so max-pool may stay after parallel neurons (methods.md §3)."""

from __future__ import annotations

import itertools

import torch
import torch.nn.functional as nnF
from hypothesis import given, settings
from hypothesis import strategies as st

from ann2snn import functional as F
from ann2snn.layers.neurons import ParallelIFNeuron


def pool_over_time(spikes: torch.Tensor, **pool) -> torch.Tensor:
    """Max-pool applied per time step, as the SNN runs it on ``[T·B, C, H, W]``. Shape: ``[T, B, C, H, W]``."""
    T, B = spikes.shape[:2]
    out = nnF.max_pool2d(spikes.reshape((T * B,) + spikes.shape[2:]), **pool)
    return out.reshape((T, B) + out.shape[1:])


def test_exhaustive_small_windows():
    """Every tuple of levels in a window of 1..4 neurons, T = 1..5, both orders."""
    for T in range(1, 6):
        for k in range(1, 5):
            combos = torch.tensor(list(itertools.product(range(T + 1), repeat=k)), dtype=torch.float64)
            for order in ("front", "back"):
                trains = F.spikes_from_level(combos, T, order)  # [T, N, k]
                pooled = trains.max(dim=-1).values  # max over the window at every step
                expected = F.spikes_from_level(combos.max(dim=-1).values, T, order)
                assert torch.equal(pooled, expected), (T, k, order)


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 2**31 - 1),
    timesteps=st.integers(1, 16),
    order=st.sampled_from(["front", "back"]),
    kernel=st.integers(1, 3),
    stride=st.integers(1, 3),
    padding=st.integers(0, 1),
    ceil_mode=st.booleans(),
)
def test_maxpool2d_commutes_with_thermometer_codes(seed, timesteps, order, kernel, stride, padding, ceil_mode):
    if 2 * padding > kernel:
        padding = 0
    gen = torch.Generator().manual_seed(seed)
    T, B, C = timesteps, 2, 3
    level = torch.randint(0, T + 1, (B, C, 6, 5), generator=gen).to(torch.float64)
    amplitude = torch.rand(C, 1, 1, generator=gen, dtype=torch.float64) + 0.5  # per channel, equal in a window
    pool = {"kernel_size": kernel, "stride": stride, "padding": padding, "ceil_mode": ceil_mode}
    spikes = F.spikes_from_level(level, T, order) * amplitude
    pooled = pool_over_time(spikes, **pool)
    expected = F.spikes_from_level(nnF.max_pool2d(level, **pool), T, order) * amplitude
    assert torch.equal(pooled, expected)
    # Hence the time-mean after the pool is the pool of the time-means: what rate mode computes.
    assert torch.allclose(pooled.mean(0), nnF.max_pool2d(level / T * amplitude, **pool), rtol=0, atol=1e-15)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), timesteps=st.integers(1, 12), order=st.sampled_from(["front", "back"]))
def test_neuron_then_maxpool_spike_equals_rate(seed, timesteps, order):
    gen = torch.Generator().manual_seed(seed)
    T, B, C = timesteps, 2, 4
    threshold = torch.rand(C, 1, 1, generator=gen, dtype=torch.float64) + 0.5
    neuron = ParallelIFNeuron(threshold, T, order=order)
    mean = torch.randn(B, C, 4, 4, generator=gen, dtype=torch.float64) * 2
    seq = mean.unsqueeze(0).expand((T,) + mean.shape).reshape((T * B,) + mean.shape[1:])
    spike = nnF.max_pool2d(neuron(seq), 2).reshape(T, B, C, 2, 2)
    neuron.mode = "rate"
    rate = nnF.max_pool2d(neuron(mean), 2)
    assert torch.allclose(spike.mean(0), rate, rtol=0, atol=1e-12)


def test_unsorted_or_unequal_trains_do_not_commute():
    """Sanity negatives: the lemma needs sorted trains of one amplitude."""
    # Unsorted: [1, 0] and [0, 1] each have one spike, their per-step max has two.
    a = torch.tensor([[1.0, 0.0], [0.0, 1.0]]).T  # [T=2, window=2]
    assert a.max(dim=-1).values.sum().item() == 2 != a.sum(0).max().item()
    # Sorted but unequal amplitudes: level 2 at 0.5 vs level 1 at 2.0 -> per-step max [2, 0.5] sums to 2.5,
    # while the larger time-mean is max(1.0/2·2, 0.5·2/2) = 1.0 per step (sum 2).
    b = torch.stack([F.spikes_from_level(torch.tensor(2.0), 2) * 0.5, F.spikes_from_level(torch.tensor(1.0), 2) * 2])
    assert b.max(dim=0).values.sum().item() == 2.5 != b.sum(1).max().item()
