"""Least-squares weight refit (calibrate/refit.py) and its use inside DA calibration."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn
from typer.testing import CliRunner

import ann2snn as a2s
from ann2snn.calibrate import calibrate_da
from ann2snn.calibrate.refit import (
    MAX_FEATURES,
    GramPair,
    apply_refit,
    augmented_weight,
    layer_features,
    layer_rows,
    refit_support,
    relative_error,
    ridge_refit,
)
from ann2snn.cli.app import app
from ann2snn.config import ConversionConfig
from ann2snn.errors import ConfigError


def _grams(fs: torch.Tensor, fa: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    return fs.T @ fs, fa.T @ fs


@settings(max_examples=25, deadline=None)
@given(
    st.integers(1, 3),
    st.integers(1, 4),
    st.sampled_from([1, 3]),
    st.integers(1, 2),
    st.integers(0, 1),
    st.integers(1, 2),
    st.booleans(),
    st.integers(0, 2**31 - 1),
)
def test_conv_features_times_augmented_weight_is_the_conv(
    cin: int, cout: int, k: int, stride: int, padding: int, dilation: int, bias: bool, seed: int
) -> None:
    torch.manual_seed(seed)
    conv = nn.Conv2d(cin, cout, k, stride=stride, padding=padding, dilation=dilation, bias=bias).double()
    x = torch.randn(2, cin, 7, 6, dtype=torch.float64)
    y = conv(x)  # [B, out, H, W]
    rows = layer_features(conv, x) @ augmented_weight(conv).T  # [B·H·W, out]
    expected = y.permute(0, 2, 3, 1).reshape(-1, cout)
    torch.testing.assert_close(rows, expected, rtol=1e-12, atol=1e-12)


def test_linear_features_times_augmented_weight_is_the_layer_on_any_leading_dims() -> None:
    lin = nn.Linear(5, 3).double()
    x = torch.randn(4, 2, 5, dtype=torch.float64)
    rows = layer_features(lin, x) @ augmented_weight(lin).T
    torch.testing.assert_close(rows, lin(x).reshape(-1, 3), rtol=1e-12, atol=1e-12)


def test_ridge_refit_recovers_the_exact_linear_correction() -> None:
    """If the ANN's input is a linear map of the SNN's, x_a = M·x_s, the refit is W·M (to round-off)."""
    g = torch.Generator().manual_seed(0)
    d, out, n = 6, 4, 500
    xs = torch.cat([torch.randn(n, d - 1, generator=g, dtype=torch.float64), torch.ones(n, 1, dtype=torch.float64)], 1)
    m = torch.eye(d, dtype=torch.float64)
    m[: d - 1, :] += 0.3 * torch.randn(d - 1, d, generator=g, dtype=torch.float64)  # keeps the ones column
    xa = xs @ m.T
    w = torch.randn(out, d, generator=g, dtype=torch.float64)
    gss, gas = _grams(xs, xa)
    torch.testing.assert_close(ridge_refit(w, gss, gas, 1e-14), w @ m, rtol=1e-8, atol=1e-8)
    # identical inputs: the ANN's weights at any λ; a huge λ: the ANN's weights
    torch.testing.assert_close(ridge_refit(w, gss, gss, 0.3), w, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(ridge_refit(w, gss, gas, 1e12), w, rtol=1e-6, atol=1e-6)
    # the error function orders candidates as the true squared error does
    true_err = lambda v: float(((xs @ v.T - xa @ w.T) ** 2).sum())  # noqa: E731
    const = float(((xa @ w.T) ** 2).sum())
    for v in (w, w @ m, ridge_refit(w, gss, gas, 0.1)):
        assert relative_error(v, w, gss, gas) + const == pytest.approx(true_err(v), rel=1e-9, abs=1e-6)


def test_gram_pair_refits_a_distorted_input_and_keeps_an_exact_one() -> None:
    torch.manual_seed(0)
    lin = nn.Linear(8, 3).double()
    pair, same = GramPair(lin), GramPair(lin)
    for _ in range(4):
        xa = torch.rand(64, 8, dtype=torch.float64)
        xs = torch.round(xa * 2) / 2  # a coarse (quantized) copy
        pair.add(xa, xs)
        same.add(xa, xa)
    assert same.solve() == (None, None)  # nothing to correct
    new, lam = pair.solve()
    assert new is not None and lam is not None
    w = augmented_weight(lin)
    held_ss, held_as = pair.held["ss"], pair.held["as"]
    assert relative_error(new, w, held_ss, held_as) < relative_error(w, w, held_ss, held_as)


@pytest.mark.parametrize("module", [nn.Conv2d(2, 3, 3, padding=1, stride=2), nn.Linear(5, 2)])
def test_sampled_rows_are_the_same_rows_of_both_inputs(module: nn.Module) -> None:
    shape = (4, 2, 6, 6) if isinstance(module, nn.Conv2d) else (4, 3, 5)
    xs, xa = torch.randn(*shape), torch.randn(*shape)
    rows_s, rows_a = GramPair(module)._sample(xs, xa, 7)  # type: ignore[arg-type]
    full_s, full_a = layer_rows(module, xs), layer_rows(module, xa)
    assert len(rows_s) == 7
    for rs, ra in zip(rows_s, rows_a, strict=True):
        (index,) = torch.nonzero((full_s == rs).all(dim=1)).flatten().tolist()
        assert torch.equal(full_a[index], ra)


def test_apply_refit_adds_a_bias_where_there_was_none() -> None:
    conv = nn.Conv2d(2, 3, 3, bias=False)
    new = torch.randn(3, 2 * 9 + 1, dtype=torch.float64)
    apply_refit(conv, new)
    torch.testing.assert_close(conv.weight.detach(), new[:, :-1].reshape(3, 2, 3, 3).float())
    assert conv.bias is not None
    torch.testing.assert_close(conv.bias.detach(), new[:, -1].float())


def test_refit_support_names_what_it_cannot_refit() -> None:
    assert refit_support(nn.Linear(4, 2)) is None
    assert refit_support(nn.Conv2d(4, 4, 3, padding=1)) is None
    assert "grouped" in str(refit_support(nn.Conv2d(4, 4, 3, groups=2)))
    assert "Conv1d" in str(refit_support(nn.Conv1d(4, 4, 3)))
    assert "input features" in str(refit_support(nn.Linear(MAX_FEATURES, 2)))


def _net(groups: int = 1) -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(1, 6, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(6, 4, 3, padding=1, groups=groups),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(4 * 6 * 6, 16),
        nn.ReLU(),
        nn.Linear(16, 5, bias=False),
    ).eval()


@pytest.mark.parametrize("T", [1, 2])
def test_da_refit_lowers_the_output_error_and_logs_each_layer(T: int) -> None:
    ann = _net()
    g = torch.Generator().manual_seed(1)
    data = [torch.rand(64, 1, 6, 6, generator=g) for _ in range(6)]
    test = torch.rand(256, 1, 6, 6, generator=g)
    cfg = ConversionConfig(method="parallel", timesteps=T, per_channel=True, threshold_mode="max")
    snn = a2s.convert(ann, cfg, calibration_data=data)
    before = copy.deepcopy(snn.state_dict())
    ann_before = copy.deepcopy(ann.state_dict())
    plain = calibrate_da(snn, ann, data, refit=False, progress=False)
    refit = calibrate_da(snn, ann, data, refit=True, progress=False)
    for key, value in before.items():  # inputs untouched
        assert torch.equal(snn.state_dict()[key], value), key
    for key, value in ann_before.items():
        assert torch.equal(ann.state_dict()[key], value), key
    with torch.no_grad():
        ref = ann(test)
        err = {
            name: float((a2s.simulate(m, test, T, mode="rate", record=False).mean_output - ref).pow(2).mean())
            for name, m in (("plain", plain), ("refit", refit))
        }
    assert err["refit"] < 0.9 * err["plain"], err  # on images neither calibration saw
    log = refit.log[-2]
    assert log.startswith("weight refit: ") and "2 refit (λ=" in log and "5 refit (λ=" in log, log
    assert "0 refit" not in log and "0 kept" not in log  # fed by the analog input: nothing to refit
    assert torch.equal(refit.net.get_submodule("0").weight, plain.net.get_submodule("0").weight)
    assert refit.net.get_submodule("7").bias is not None  # the bias-free readout got one


def test_da_refit_keeps_and_names_a_grouped_conv() -> None:
    ann = _net(groups=2)
    data = [torch.rand(32, 1, 6, 6) for _ in range(3)]
    snn = a2s.convert(ann, ConversionConfig(timesteps=2, per_channel=True), calibration_data=data)
    refit = calibrate_da(snn, ann, data, refit=True, progress=False)
    assert "2 kept (grouped" in refit.log[-2]
    assert torch.equal(refit.net.get_submodule("2").weight, snn.net.get_submodule("2").weight)


def test_weight_refit_config_is_checked() -> None:
    with pytest.raises(ConfigError, match="weight_refit"):
        ConversionConfig(calibration="da", estimator="ema", weight_refit=True)
    with pytest.raises(ConfigError, match="weight_refit"):
        ConversionConfig(weight_refit=True)  # no calibration
    with pytest.raises(ConfigError, match="weight_refit"):
        ConversionConfig(calibration="da", weight_refit="yes")  # type: ignore[arg-type]
    cfg = ConversionConfig(calibration="da", estimator="ema")  # default None: off for ema, no error
    assert ConversionConfig.from_dict(cfg.to_dict()) == cfg


def _refit_logged(snn: a2s.SpikingModel) -> bool:
    return any(line.startswith("weight refit: ") for line in snn.log)


def test_default_refits_relu_models_at_every_T_and_qcfs_models_at_T1() -> None:
    relu = _net()
    qcfs = a2s.prepare(_net(), a2s.QuantConfig(levels=4))
    data = [torch.rand(32, 1, 6, 6) for _ in range(3)]

    def convert(model: nn.Module, T: int, **fields: object) -> a2s.SpikingModel:
        cfg = ConversionConfig(timesteps=T, calibration="da", **fields)  # type: ignore[arg-type]
        return a2s.convert(model, cfg, calibration_data=data)

    assert _refit_logged(convert(relu, 2)) and _refit_logged(convert(relu, 8))
    assert _refit_logged(convert(qcfs, 1)) and not _refit_logged(convert(qcfs, 2))
    assert _refit_logged(convert(qcfs, 2, weight_refit=True))
    assert not _refit_logged(convert(relu, 2, weight_refit=False))
    assert not _refit_logged(convert(relu, 2, estimator="ema"))


def test_cli_convert_calibrates_a_relu_checkpoint_with_refit(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = a2s.create_model("cnn", num_classes=10, in_channels=1, image_size=8).eval()
    stem = a2s.save_checkpoint(tmp_path / "relu", model, dataset="digits")
    out = tmp_path / "summary.json"
    args = ["convert", "-c", str(stem), "-T", "1", "--per-channel", "--calibration", "da", "--json", str(out)]
    result = CliRunner().invoke(app, [*args, "--calibration-batches", "2"])
    assert result.exit_code == 0, result.output
    notes = json.loads(out.read_text())["notes"]
    assert any(n.startswith("DA calibration (match, objective=mse_threshold, weight refit)") for n in notes), notes
    assert any(n.startswith("weight refit: ") and " refit (λ=" in n for n in notes), notes
