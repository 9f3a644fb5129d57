"""Closed-form tests of the ANN-side activations."""

import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from ann2snn import functional as F
from ann2snn.layers import QCFS, ClipReLU


@settings(max_examples=40, deadline=None)
@given(levels=st.integers(1, 32), threshold=st.floats(0.1, 10.0), seed=st.integers(0, 2**16))
def test_qcfs_has_exactly_l_plus_one_levels_monotone_and_bounded(levels, threshold, seed):
    z = torch.linspace(-2 * threshold, 3 * threshold, 20001, dtype=torch.float64)
    z = torch.cat([z, torch.randn(1000, dtype=torch.float64, generator=torch.Generator().manual_seed(seed))])
    z, _ = torch.sort(z)
    a = F.qcfs(z, threshold, levels)
    assert torch.all(a[1:] >= a[:-1]), "QCFS must be monotone"
    assert a.min() == 0 and a.max() == threshold
    values = torch.unique(a)
    assert len(values) == levels + 1
    expected = torch.arange(levels + 1, dtype=torch.float64) * threshold / levels
    torch.testing.assert_close(values, expected, rtol=1e-12, atol=1e-12)


def test_qcfs_closed_form_at_level_boundaries():
    # θ = 4, L = 4: levels switch at z = 0.5, 1.5, 2.5, 3.5.
    z = torch.tensor([-1.0, 0.49, 0.5, 1.49, 1.5, 2.5, 3.49, 3.5, 100.0])
    assert F.qcfs(z, 4.0, 4).tolist() == [0.0, 0.0, 1.0, 1.0, 2.0, 3.0, 3.0, 4.0, 4.0]


def test_qcfs_gradient_is_one_inside_the_clip_window():
    theta, levels = 2.0, 4
    z = torch.tensor([-0.3, -0.2, 0.0, 1.0, 1.7, 1.8, 2.2, 2.3, 3.0], requires_grad=True)
    F.qcfs(z, theta, levels).sum().backward()
    # reference window [−θ/2L, θ + θ/2L) = [−0.25, 2.25)
    assert z.grad.tolist() == [0.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 0.0, 0.0]
    z.grad = None
    F.qcfs(z, theta, levels, gradient="clamped").sum().backward()
    # clamped window [−θ/2L, θ − θ/2L] = [−0.25, 1.75]
    assert z.grad.tolist() == [0.0, 1.0, 1.0, 1.0, 1.0, 0.0, 0.0, 0.0, 0.0]


def test_qcfs_module_learns_its_threshold():
    m = QCFS(levels=4, threshold=2.0)
    z = torch.linspace(-1, 4, 50)
    m(z).sum().backward()
    assert m.threshold.grad is not None and m.threshold.grad.abs() > 0


def test_clip_relu_per_channel_threshold():
    m = ClipReLU(torch.tensor([1.0, 2.0]).view(2, 1, 1), learn_threshold=False)
    x = torch.full((1, 2, 2, 2), 1.5)
    out = m(x)
    assert out[0, 0].eq(1.0).all() and out[0, 1].eq(1.5).all()
    assert F.clip_relu(torch.tensor([-1.0, 0.5, 3.0]), 1.0).tolist() == [0.0, 0.5, 1.0]


def test_step_relu_authors_form():
    # step 0.25, 4 steps: 0 for z ≤ 0, 0.25·(ceil(z/0.25) − 1) on (0, 1], identity above 1.
    z = torch.tensor([-1.0, 0.0, 0.1, 0.25, 0.26, 0.5, 1.0, 1.2])
    out = F.step_relu(z, 0.25, 4)
    assert out.tolist() == [0.0, 0.0, 0.0, 0.0, 0.25, 0.25, 0.75, 1.2000000476837158]
    g = torch.tensor([-1.0, 0.3, 2.0], requires_grad=True)
    F.step_relu(g, 0.25, 4).sum().backward()
    assert g.grad.tolist() == [0.0, 1.0, 1.0]
