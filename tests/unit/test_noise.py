"""Noise functions corrupt exactly what they say (evaluate/noise.py)."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from ann2snn.errors import ConfigError
from ann2snn.evaluate.noise import Attack, fgsm, gaussian_noise, parse_attacks, pgd, salt_and_pepper


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 10_000), st.floats(0.0, 1.0), st.integers(1, 3), st.integers(2, 12))
def test_salt_and_pepper_exact_fraction_half_each(seed: int, p: float, channels: int, side: int) -> None:
    # values strictly inside (0, 1): every changed pixel is visible, in every channel
    x = 0.25 + 0.5 * torch.rand(5, channels, side, side, generator=torch.Generator().manual_seed(seed))
    out = salt_and_pepper(x, p, torch.Generator().manual_seed(seed))
    n = side * side
    k = min(n - n % 2, 2 * round(p * n / 2))
    black = (out == 0).all(1).flatten(1).sum(1)
    white = (out == 1).all(1).flatten(1).sum(1)
    changed = (out != x).any(1).flatten(1).sum(1)
    assert black.tolist() == [k // 2] * 5 and white.tolist() == [k // 2] * 5
    assert changed.tolist() == [k] * 5
    untouched = ~(out != x).any(1, keepdim=True).expand_as(x)
    assert torch.equal(out[untouched], x[untouched])


def test_salt_and_pepper_paper_protocol_and_seeding() -> None:
    x = torch.full((3, 1, 28, 28), 0.5)
    out = salt_and_pepper(x, 0.05, torch.Generator().manual_seed(1))
    assert (out == 0).sum().item() == 3 * 20 and (out == 1).sum().item() == 3 * 20  # 5 % of 784 → 40 pixels
    again = salt_and_pepper(x, 0.05, torch.Generator().manual_seed(1))
    other = salt_and_pepper(x, 0.05, torch.Generator().manual_seed(2))
    assert torch.equal(out, again) and not torch.equal(out, other)
    assert not torch.equal(out[0], out[1])  # positions differ per image
    with pytest.raises(ConfigError):
        salt_and_pepper(x, 1.5)


def test_gaussian_noise_clipped_and_scaled() -> None:
    x = torch.full((64, 1, 16, 16), 0.5, dtype=torch.float64)
    out = gaussian_noise(x, 0.1, torch.Generator().manual_seed(0))
    assert out.min() >= 0 and out.max() <= 1
    assert (out - x).std().item() == pytest.approx(0.1, rel=0.05)
    assert torch.equal(gaussian_noise(x, 0.0), x)
    assert gaussian_noise(x, 5.0, torch.Generator().manual_seed(0)).max() == 1.0


def test_fgsm_and_pgd_stay_in_the_ball() -> None:
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, 3))
    x, y = torch.rand(8, 1, 4, 4), torch.randint(0, 3, (8,))
    for adv in (fgsm(model, x, y, 0.1), pgd(model, x, y, 0.1, generator=torch.Generator().manual_seed(0))):
        assert (adv - x).abs().max() <= 0.1 + 1e-6
        assert adv.min() >= 0 and adv.max() <= 1
    inner = fgsm(model, torch.full_like(x, 0.5), y, 0.1)
    assert torch.allclose((inner - 0.5).abs(), torch.full_like(x, 0.1))  # every pixel moved by exactly ε


def test_parse_attacks() -> None:
    assert parse_attacks("sp:0.05, gauss:0.1,fgsm:0.02,pgd:0.03") == [
        Attack("sp", 0.05),
        Attack("gauss", 0.1),
        Attack("fgsm", 0.02),
        Attack("pgd", 0.03),
    ]
    assert parse_attacks("sp") == [Attack("sp", 0.05)]
    assert parse_attacks("gaussian:0.2")[0].name == "gauss:0.2"
    for bad in ("blur:0.1", "sp:x", "", "sp:2"):
        with pytest.raises(ConfigError):
            parse_attacks(bad)
