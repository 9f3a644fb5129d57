"""DA calibration's EMA estimators against their rules restated in closed form, and the ``sites`` option.

The paper's rule as its authors' code runs it (``estimator="ema"``), per site and batch, from ψ = φ = 0:

1. ``ψ ← α·ψ + (1 − α)·mean_c(z_ref − z_cal)`` (per channel c, over batch and spatial positions);
2. the calibrated output with the new ψ and the previous φ: ``a_cal = level_T(z_cal + ψ)·(θ + φ)/T``, where
   ``level_T(u) = clamp(floor(u·T/θ + 1/2), 0, T)``; the calibrated branch continues downstream with this ``a_cal``;
3. ``φ ← α·φ + (1 − α)·mean_c(a_ref − a_cal)``.

On a fixed batch with firing rate ``r = mean_c(level_T)/T`` step 3 settles where ``φ = E[a_ref] − r·(θ + φ)``:
``φ* = (E[a_ref] − r·θ)/(1 + r)``. ``estimator="ema_theta"`` measures the gap at amplitude θ instead
(``a_cal`` with φ = 0 in step 3) and continues with the new φ: ``φ* = E[a_ref] − r·θ``.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

import ann2snn as a2s
from ann2snn.calibrate import calibrate_da
from ann2snn.config import ConversionConfig
from ann2snn.errors import ConfigError
from ann2snn.layers import QCFS

ALPHA = 0.9
THETA = 1.0
L = 8


def _level(u: torch.Tensor, T: int) -> torch.Tensor:
    return torch.clamp(torch.floor(u * T / THETA + 0.5), 0, T)


def _qcfs_ref(z: torch.Tensor) -> torch.Tensor:
    return torch.clamp(torch.floor(z * L / THETA + 0.5), 0, L) / L * THETA


def _cmean(t: torch.Tensor) -> torch.Tensor:
    return t.transpose(0, 1).reshape(t.shape[1], -1).mean(dim=1)


def _per_channel(t: torch.Tensor) -> torch.Tensor:
    return t.reshape(t.shape[0], 1, 1)


def _positive(model: nn.Sequential, low: float, high: float) -> nn.Sequential:
    """Positive weights in [low, high) and zero biases for the conv layers, so every channel fires sometimes."""
    g = torch.Generator().manual_seed(7)
    with torch.no_grad():
        for m in model:
            if isinstance(m, nn.Conv2d):
                m.weight.copy_(torch.rand(m.weight.shape, generator=g) * (high - low) + low)
                m.bias.zero_()
    return model.double()


def _two_site_ann() -> nn.Sequential:
    torch.manual_seed(3)
    ann = nn.Sequential(
        nn.Conv2d(1, 3, 3, padding=1),
        QCFS(L, THETA, learn_threshold=False),
        nn.Conv2d(3, 2, 1),
        QCFS(L, THETA, learn_threshold=False),
        nn.Flatten(),
        nn.Linear(2 * 5 * 5, 4),
    )
    ann = _positive(ann, 0.02, 0.12)
    with torch.no_grad():
        ann[2].weight.mul_(4)  # the second site fires too
    return ann


def _batches(n: int, seed: int = 1) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return [torch.rand(8, 1, 5, 5, generator=g, dtype=torch.float64) * 1.5 for _ in range(n)]


def _by_hand(ann: nn.Sequential, batches: list[torch.Tensor], T: int, rule: str) -> list[tuple[torch.Tensor, ...]]:
    """ψ and φ of both sites after the given batches, from the rules in the module docstring."""
    conv1, conv2 = ann[0], ann[2]
    psi = [torch.zeros(3, dtype=torch.float64), torch.zeros(2, dtype=torch.float64)]
    phi = [torch.zeros(3, dtype=torch.float64), torch.zeros(2, dtype=torch.float64)]
    with torch.no_grad():
        for x in batches:
            z_ref = z_cal = conv1(x)
            for i in range(2):
                a_ref = _qcfs_ref(z_ref)
                psi[i] = ALPHA * psi[i] + (1 - ALPHA) * _cmean(z_ref - z_cal)
                level = _level(z_cal + _per_channel(psi[i]), T)
                if rule == "ema":
                    a_cal = level * (THETA + _per_channel(phi[i])) / T
                    phi[i] = ALPHA * phi[i] + (1 - ALPHA) * _cmean(a_ref - a_cal)
                else:  # ema_theta
                    phi[i] = ALPHA * phi[i] + (1 - ALPHA) * _cmean(a_ref - level * THETA / T)
                    a_cal = level * (THETA + _per_channel(phi[i])) / T
                if i == 0:
                    z_ref, z_cal = conv2(a_ref), conv2(a_cal)
    return [(psi[i], phi[i]) for i in range(2)]


def _calibrated(ann: nn.Module, batches: list[torch.Tensor], T: int, estimator: str, **kw) -> list[tuple]:
    snn = a2s.convert(ann, ConversionConfig(method="parallel", timesteps=T), calibration_data=batches)
    cal = calibrate_da(snn, ann, batches, estimator=estimator, ema_alpha=ALPHA, max_batches=None, progress=False, **kw)
    return [(n.bias.reshape(-1), n.amplitude_correction.reshape(-1)) for n in cal.neurons().values()]


@pytest.mark.parametrize("rule", ["ema", "ema_theta"])
def test_ema_rules_step_by_step_equal_the_closed_form(rule: str) -> None:
    ann, T = _two_site_ann(), 2
    data = _batches(3)
    for n in (1, 3):  # one update, then three (φ_old enters from the second batch on)
        expected = _by_hand(ann, data[:n], T, rule)
        got = _calibrated(ann, data[:n], T, rule)
        for (psi_e, phi_e), (psi_g, phi_g) in zip(expected, got, strict=True):
            torch.testing.assert_close(psi_g, psi_e, rtol=1e-12, atol=1e-12)
            torch.testing.assert_close(phi_g, phi_e, rtol=1e-12, atol=1e-12)
    # the second site's ψ and both φ really depend on the rule (the test can tell them apart)
    other = _by_hand(ann, data, T, "ema_theta" if rule == "ema" else "ema")
    assert not torch.allclose(other[1][1], expected[1][1], rtol=1e-6, atol=0)
    assert not torch.allclose(other[1][0], expected[1][0], rtol=1e-6, atol=0)


def test_first_update_is_the_same_for_both_rules() -> None:
    ann, data = _two_site_ann(), _batches(1)
    ema, theta = _calibrated(ann, data, 2, "ema"), _calibrated(ann, data, 2, "ema_theta")
    torch.testing.assert_close(ema[0][1], theta[0][1], rtol=1e-12, atol=1e-12)  # φ_old = 0 at the first batch


def test_fixed_points_on_a_repeated_batch() -> None:
    torch.manual_seed(0)
    ann = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), QCFS(L, THETA, learn_threshold=False), nn.Flatten())
    ann = _positive(ann, 0.02, 0.12)
    x, T = _batches(1, seed=5)[0], 2
    data = [x] * 300  # α = 0.9: the distance to the fixed point shrinks at least by 0.9 per batch
    with torch.no_grad():
        z = ann[0](x)
    r = _cmean(_level(z, T)) / T  # single site: z_cal = z_ref, so ψ stays 0
    m = _cmean(_qcfs_ref(z))
    assert torch.all((r > 0.05) & (r < 0.95)), r  # a non-trivial firing rate in every channel
    official = (m - r * THETA) / (1 + r)
    at_theta = m - r * THETA
    assert torch.all((official - at_theta).abs() > 1e-3)  # the two fixed points differ
    ((psi, phi),) = _calibrated(ann, data, T, "ema")
    torch.testing.assert_close(phi, official, rtol=1e-9, atol=1e-12)
    assert torch.all(psi == 0)
    ((_, phi_theta),) = _calibrated(ann, data, T, "ema_theta")
    torch.testing.assert_close(phi_theta, at_theta, rtol=1e-9, atol=1e-12)
    torch.testing.assert_close(phi / phi_theta, 1 / (1 + r), rtol=1e-8, atol=0)


def _conv_linear_ann() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(1, 3, 3, padding=1),
        QCFS(L, THETA, learn_threshold=False),
        nn.AvgPool2d(2),
        nn.Flatten(),
        nn.Linear(12, 5),
        QCFS(L, THETA, learn_threshold=False),
        nn.Linear(5, 2),
    ).double()


@pytest.mark.parametrize("estimator", ["ema", "ema_theta", "mean", "match"])
def test_sites_conv_leaves_linear_sites_uncalibrated(estimator: str) -> None:
    ann = _conv_linear_ann()
    data = [x[:, :, :4, :4] for x in _batches(3)]
    all_sites = _calibrated(ann, data, 2, estimator)
    conv_only = _calibrated(ann, data, 2, estimator, sites="conv")
    assert all(t.abs().sum() > 0 for t in all_sites[1])  # the linear site is calibrated with sites="all" ...
    assert all(torch.all(t == 0) for t in conv_only[1])  # ... and keeps ψ = φ = 0 with sites="conv"
    for got, full in zip(conv_only[0], all_sites[0], strict=True):  # the conv site comes first: the same values
        torch.testing.assert_close(got, full, rtol=0, atol=0)


def test_sites_through_config_convert_and_log() -> None:
    ann = _conv_linear_ann()
    data = [x[:, :, :4, :4] for x in _batches(2)]
    cfg = ConversionConfig(timesteps=2, calibration="da", estimator="ema", calibration_sites="conv")
    assert ConversionConfig.from_dict(cfg.to_dict()) == cfg
    snn = a2s.convert(ann, cfg, calibration_data=data)
    conv_site, lin_site = snn.neurons().values()
    assert conv_site.amplitude_correction.abs().sum() > 0
    assert torch.all(lin_site.bias == 0) and torch.all(lin_site.amplitude_correction == 0)
    assert any("conv sites only; 1 other site(s) uncalibrated" in line for line in snn.log)
    with pytest.raises(ConfigError, match="calibration_sites"):
        ConversionConfig(calibration_sites="dense")
    with pytest.raises(ConfigError, match="calibration='da'"):
        ConversionConfig(method="serial", calibration="li_bias", calibration_sites="conv")
    with pytest.raises(ConfigError, match="sites='dense'"):
        calibrate_da(snn, ann, data, sites="dense", progress=False)
