"""Closed-form tests of the ANN-side activations."""

import pytest
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


def _reference_qcfs_grads(z, theta, levels):
    """QCFS's reference straight-through rule in closed form: with ``k = floor(z·L/θ + 1/2)`` and
    ``inside = [0 ≤ k ≤ L]`` (z in [−θ/2L, θ + θ/2L)): ``dy/dz = inside``, ``dy/dθ = clamp(k, 0, L)/L − inside·z/θ``."""
    k = torch.floor(z * levels / theta + 0.5)
    inside = ((k >= 0) & (k <= levels)).to(z.dtype)
    return inside, torch.clamp(k, 0, levels) / levels - inside * z / theta


@pytest.mark.parametrize("levels", [1, 2, 4, 8])
@pytest.mark.parametrize("theta_value", [0.5, 2.0, 3.0])
def test_qcfs_reference_gradient_dz_and_dtheta_on_a_dense_grid(levels, theta_value):
    theta = torch.tensor(theta_value, dtype=torch.float64)
    step = theta_value / (2 * levels)  # the grid holds every boundary −θ/2L, θ − θ/2L, θ, θ + θ/2L exactly
    grid = torch.arange(-4 * levels, 4 * levels + 1, dtype=torch.float64) * step
    fine = torch.linspace(-1.5 * theta_value, 2.5 * theta_value, 4001, dtype=torch.float64)
    for z0 in (grid, fine):
        z = z0.clone().requires_grad_(True)
        th = torch.full_like(z0, theta_value).requires_grad_(True)  # per element, so dθ is per element
        F.qcfs(z, th, levels).sum().backward()
        dz, dtheta = _reference_qcfs_grads(z0, th.detach(), levels)
        assert torch.equal(z.grad, dz)
        torch.testing.assert_close(th.grad, dtheta, rtol=0, atol=1e-12)
        th_scalar = theta.clone().requires_grad_(True)  # a per-layer θ gets the sum
        F.qcfs(z0, th_scalar, levels).sum().backward()
        torch.testing.assert_close(th_scalar.grad, dtheta.sum(), rtol=1e-12, atol=1e-12)
    # element by element at the boundaries (per-element θ, so dθ is per element too)
    half = theta_value / (2 * levels)
    z = torch.tensor(
        [-half - 1e-9, -half, theta_value - half, theta_value, theta_value + half - 1e-9, theta_value + half],
        dtype=torch.float64,
        requires_grad=True,
    )
    th = torch.full_like(z, theta_value).requires_grad_(True)
    F.qcfs(z, th, levels).sum().backward()
    dz, dtheta = _reference_qcfs_grads(z.detach(), th.detach(), levels)
    assert z.grad.tolist() == [0.0, 1.0, 1.0, 1.0, 1.0, 0.0] == dz.tolist()
    torch.testing.assert_close(th.grad, dtheta, rtol=0, atol=1e-12)
    # at z = θ the reference gives (dz, dθ) = (1, 0); above the window (0, 1); at z = θ − θ/2L (1, 1/2L)
    assert (z.grad[3].item(), th.grad[3].item()) == (1.0, 0.0)
    assert (z.grad[5].item(), th.grad[5].item()) == (0.0, 1.0)
    assert z.grad[2].item() == 1.0
    torch.testing.assert_close(th.grad[2], torch.tensor(1 / (2 * levels), dtype=torch.float64))


def test_qcfs_reference_gradient_equals_autograd_of_the_reference_recipe():
    # the recipe of QCFS's code, composed from plain ops: divide by θ, floor(u·L + 1/2) with an identity gradient,
    # divide by L, clamp to [0, 1], multiply by θ; autograd then gives the reference gradients
    def recipe(z, th, levels):
        u = z / th * levels + 0.5
        stepped = u + (torch.floor(u) - u).detach()
        return torch.clamp(stepped / levels, 0, 1) * th

    levels = 4
    z0 = torch.linspace(-3, 5, 3201, dtype=torch.float64)
    grads = []
    for fn in (lambda z, th: F.qcfs(z, th, levels), lambda z, th: recipe(z, th, levels)):
        z = z0.clone().requires_grad_(True)
        th = torch.full_like(z0, 2.0).requires_grad_(True)
        fn(z, th).sum().backward()
        grads.append((z.grad, th.grad))
    assert torch.equal(grads[0][0], grads[1][0])
    torch.testing.assert_close(grads[0][1], grads[1][1], rtol=0, atol=1e-12)


def test_qcfs_clamped_gradient_closed_form_on_a_dense_grid():
    theta, levels = 2.0, 4
    z = (torch.arange(-24, 25, dtype=torch.float64) * theta / (2 * levels)).requires_grad_(True)
    F.qcfs(z, theta, levels, gradient="clamped").sum().backward()
    u = z.detach() * levels / theta + 0.5
    assert torch.equal(z.grad, ((u >= 0) & (u <= levels)).to(z.dtype))  # 1 on [−θ/2L, θ − θ/2L]


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
