"""BatchNorm folding: folded equals unfolded in eval mode."""

import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from ann2snn import fold_batchnorm
from ann2snn.functional import fold_bn_into_weights


def _randomize_bn(model: nn.Module, gen: torch.Generator) -> None:
    for m in model.modules():
        if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            c = m.num_features
            m.running_mean.copy_(torch.randn(c, generator=gen, dtype=m.running_mean.dtype))
            m.running_var.copy_(torch.rand(c, generator=gen, dtype=m.running_var.dtype) + 0.1)
            m.weight.data.copy_(torch.randn(c, generator=gen, dtype=m.weight.dtype))
            m.bias.data.copy_(torch.randn(c, generator=gen, dtype=m.bias.dtype))


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**16), bias=st.booleans(), channels=st.integers(1, 6))
def test_folded_equals_unfolded(seed, bias, channels):
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    model = (
        nn.Sequential(
            nn.Conv2d(2, channels, 3, padding=1, bias=bias),
            nn.BatchNorm2d(channels),
            nn.ReLU(),
            nn.Flatten(),
            nn.Linear(channels * 16, 5, bias=bias),
            nn.BatchNorm1d(5),
        )
        .double()
        .eval()
    )
    _randomize_bn(model, gen)
    folded = fold_batchnorm(model)
    assert not any(isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)) for m in folded.modules())
    x = torch.randn(7, 2, 4, 4, generator=gen, dtype=torch.float64)
    torch.testing.assert_close(folded(x), model(x), rtol=1e-10, atol=1e-10)
    assert any(isinstance(m, nn.BatchNorm2d) for m in model.modules()), "input model must be untouched"


def test_fold_formula_matches_hand_computation():
    w = torch.tensor([[2.0], [3.0]])
    b = torch.tensor([1.0, -1.0])
    new_w, new_b = fold_bn_into_weights(
        w,
        b,
        torch.tensor([1.0, 0.0]),
        torch.tensor([3.0, 0.0]),
        torch.tensor([2.0, 1.0]),
        torch.tensor([0.5, 0.0]),
        eps=1.0,
    )
    # scale = γ/√(σ²+ε) = [1, 1]
    assert new_w.tolist() == [[2.0], [3.0]] and new_b.tolist() == [0.5, -1.0]


def test_bn_not_after_conv_is_kept():
    model = nn.Sequential(nn.ReLU(), nn.BatchNorm1d(3)).eval()
    folded = fold_batchnorm(model)
    assert any(isinstance(m, nn.BatchNorm1d) for m in folded.modules())


def _ulp32(v: torch.Tensor) -> torch.Tensor:
    a = v.abs().float()
    return (torch.nextafter(a, torch.full_like(a, float("inf"))) - a).double()


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**16), bias=st.booleans(), affine=st.booleans())
def test_float32_fold_is_correctly_rounded(seed, bias, affine):
    """Every folded float32 weight and bias is within ½ ulp of the exact formula (computed in float64, which is
    ~2⁻²⁹ ulp32 accurate), the least change folding can make to a pre-activation; rounding rsqrt, the products and
    the sum separately in float32 is off by up to a few ulps."""
    gen = torch.Generator().manual_seed(seed)
    c = 64
    w = torch.randn(c, 8, 3, 3, generator=gen)
    b = torch.randn(c, generator=gen) if bias else None
    mean, var = torch.randn(c, generator=gen) * 3, torch.rand(c, generator=gen) * 4 + 1e-3
    gamma = torch.randn(c, generator=gen) if affine else None
    beta = torch.randn(c, generator=gen) if affine else None
    new_w, new_b = fold_bn_into_weights(w, b, mean, var, gamma, beta, 1e-5)
    assert new_w.dtype == new_b.dtype == torch.float32
    scale = torch.rsqrt(var.double() + 1e-5) * (gamma.double() if affine else 1.0)
    ref_w = w.double() * scale.view(-1, 1, 1, 1)
    ref_b = ((b.double() if bias else 0.0) - mean.double()) * scale + (beta.double() if affine else 0.0)
    for got, ref in ((new_w, ref_w), (new_b, ref_b)):
        err = (got.double() - ref).abs()
        assert bool((err <= 0.5 * _ulp32(got) + ref.abs() * 2.0**-50).all()), f"max {(err / _ulp32(got)).max():.3g} ulp"
