"""Distribution-aware calibration (calibrate/da.py, estimators.py): exact neuron formula, estimators, API contract."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as Fn
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

import ann2snn as a2s
from ann2snn.calibrate import calibrate, calibrate_da
from ann2snn.calibrate.estimators import ema_update, match_output_mean, match_output_mse, mean_update
from ann2snn.config import ConversionConfig
from ann2snn.errors import CalibrationError, ConfigError
from ann2snn.layers.neurons import RATE_MODE, ParallelIFNeuron


def _da_level(z, theta, T, psi):
    """methods.md §3: level = clamp(floor(((z + ψ)·T + θ/2)/θ), 0, T); the output is ((θ+φ)/T)·level."""
    return torch.clamp(torch.floor(((z + psi) * T + theta / 2) / theta), 0, T)


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 16), st.integers(1, 6), st.integers(0, 2**31 - 1))
def test_calibrated_neuron_rate_equals_da_formula(T: int, channels: int, seed: int) -> None:
    g = torch.Generator().manual_seed(seed)
    theta = torch.rand(channels, 1, 1, generator=g, dtype=torch.float64) * 3 + 0.1
    psi = (torch.rand(channels, 1, 1, generator=g, dtype=torch.float64) - 0.5) * theta
    phi = (torch.rand(channels, 1, 1, generator=g, dtype=torch.float64) - 0.5) * theta
    z = torch.randn(5, channels, 3, 3, generator=g, dtype=torch.float64) * 2
    neuron = ParallelIFNeuron(theta, T, bias=psi, amplitude_correction=phi)
    neuron.mode = RATE_MODE
    level = _da_level(z, theta, T, psi)
    expected = level / T * (theta + phi)  # the neuron's operation order: bit-identical
    assert torch.equal(neuron(z), expected)
    torch.testing.assert_close(neuron(z), (theta + phi) / T * level, rtol=1e-15, atol=0)  # formula order
    # spike mode: T constant input steps give the same mean output (ties at level boundaries have measure zero)
    neuron.mode = "spike"
    spikes = neuron(z.unsqueeze(0).expand(T, *z.shape).reshape(T * 5, channels, 3, 3))
    torch.testing.assert_close(spikes.reshape(T, 5, channels, 3, 3).mean(0), expected, rtol=0, atol=1e-12)


def test_estimators_converge_to_the_mean_gap() -> None:
    g = torch.Generator().manual_seed(0)
    mu = torch.tensor([0.3, -0.2, 1.5], dtype=torch.float64)
    gaps = mu + 0.1 * torch.randn(3000, 3, generator=g, dtype=torch.float64)
    mean = ema = torch.zeros(3, dtype=torch.float64)
    for n, gap in enumerate(gaps, start=1):
        mean = mean_update(mean, gap, n)
        ema = ema_update(ema, gap, 0.99)
        if n == 10:
            early_mean, early_ema = mean.clone(), ema.clone()
    torch.testing.assert_close(mean, gaps.mean(0), rtol=0, atol=1e-12)  # the running mean is the exact mean
    assert torch.all((mean - mu).abs() < 0.01)
    assert torch.all((ema - mu).abs() < 0.05)
    # after 10 batches the mean is already there; the EMA from 0 has only 1 − 0.99^10 ≈ 10% of the gap
    assert torch.all((early_mean - mu).abs() < 0.1)
    torch.testing.assert_close(early_ema / mu, torch.full_like(mu, 1 - 0.99**10), rtol=0.3, atol=0)


def _mlp(seed: int = 0, dtype: torch.dtype = torch.float64) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(6, 12), nn.ReLU(), nn.Linear(12, 10), nn.ReLU(), nn.Linear(10, 3)).to(dtype)


def _batches(n: int, seed: int = 1, shape: tuple[int, ...] = (6,), dtype: torch.dtype = torch.float64) -> list:
    g = torch.Generator().manual_seed(seed)
    return [torch.rand((16,) + shape, generator=g, dtype=dtype) for _ in range(n)]


def test_one_pass_mean_estimator_psi_is_the_mean_preactivation_gap() -> None:
    ann, data, T = _mlp(), _batches(3), 2
    cfg = ConversionConfig(method="parallel", timesteps=T, per_channel=True, threshold_mode="max")
    snn = a2s.convert(ann, cfg, calibration_data=data)
    cal = calibrate_da(snn, ann, data, estimator="mean", progress=False)
    th1, th2 = (n.threshold.reshape(-1) for n in snn.neurons().values())
    lin1, lin2 = ann[0], ann[2]
    # Replay the rule independently: site 1 sees no gap (ψ1 = 0); φ1 = running mean of the output gap at θ.
    phi1 = torch.zeros(12, dtype=torch.float64)
    gaps2 = []
    with torch.no_grad():
        for k, x in enumerate(data, start=1):
            z1 = lin1(x)
            a1_ref = torch.minimum(torch.relu(z1), th1)
            lvl1 = torch.clamp(torch.floor(z1 * T / th1 + 0.5), 0, T)
            phi1 = phi1 + ((a1_ref - lvl1 / T * th1).mean(0) - phi1) / k
            gaps2.append((lin2(a1_ref) - lin2(lvl1 / T * (th1 + phi1))).mean(0))
    neurons = cal.neurons()
    names = list(neurons)
    torch.testing.assert_close(neurons[names[0]].bias, torch.zeros(12, dtype=torch.float64))
    torch.testing.assert_close(neurons[names[0]].amplitude_correction, phi1, rtol=0, atol=1e-12)
    torch.testing.assert_close(neurons[names[1]].bias, torch.stack(gaps2).mean(0), rtol=0, atol=1e-12)


def _site_means(
    model: nn.Module, snn: a2s.SpikingModel, data: list, T: int, thresholds: list[torch.Tensor]
) -> list[tuple[torch.Tensor, ...]]:
    """Per-channel means of reference (ClipReLU(θ) ANN, θ the conversion thresholds) and rate-mode SNN site outputs."""
    neurons = list(snn.neurons().values())
    relus = [m for m in model.modules() if isinstance(m, nn.ReLU)]
    ref_out: list[list[torch.Tensor]] = [[] for _ in relus]
    cal_out: list[list[torch.Tensor]] = [[] for _ in neurons]
    hooks = [
        r.register_forward_hook(lambda m, i, o, k=k: ref_out[k].append(torch.minimum(o, thresholds[k])))
        for k, r in enumerate(relus)
    ]
    hooks += [n.register_forward_hook(lambda m, i, o, k=k: cal_out[k].append(o)) for k, n in enumerate(neurons)]

    # a ReLU ANN whose activations are clipped at θ: rebuild it by clamping in the hooks' outputs
    class Clipped(nn.Module):
        def forward(self, x):
            h = x
            for layer in model:
                h = layer(h)
                if isinstance(layer, nn.ReLU):
                    h = ref_out[relus.index(layer)][-1]
            return h

    with torch.no_grad():
        for x in data:
            Clipped()(x)
            snn.forward_rate(x, T)
    for h in hooks:
        h.remove()
    return [(torch.cat(r).mean(0), torch.cat(c).mean(0)) for r, c in zip(ref_out, cal_out, strict=True)]


@pytest.mark.parametrize("objective", ["mse_threshold", "mse", "mean"])
@pytest.mark.parametrize("T", [1, 3])
def test_match_makes_channel_output_means_equal(T: int, objective: str) -> None:
    ann, data = _mlp(2), _batches(4, seed=3)
    cfg = ConversionConfig(method="parallel", timesteps=T, per_channel=True, percentile=99.0)
    snn = a2s.convert(ann, cfg, calibration_data=data)
    cal = calibrate_da(snn, ann, data, estimator="match", progress=False, objective=objective)
    thresholds = [n.threshold for n in snn.neurons().values()]
    for k, (ref, got) in enumerate(_site_means(ann, cal, data, T, thresholds)):
        torch.testing.assert_close(got, ref, rtol=1e-9, atol=1e-12, msg=f"site {k}")
    # sanity negative: without calibration the means differ
    ref, got = _site_means(ann, snn, data, T, thresholds)[1]
    assert (ref - got).abs().max() > 1e-3


def test_match_output_mean_on_synthetic_channels() -> None:
    g = torch.Generator().manual_seed(0)
    z = torch.randn(4, 5000, generator=g, dtype=torch.float64)
    theta = torch.tensor([1.0, 2.0, 0.5, 3.0], dtype=torch.float64)
    target = torch.tensor([0.3, 0.2, 0.1, 0.0], dtype=torch.float64)

    def mse_fixed(*args):
        th, psi, phi = match_output_mse(z, torch.relu(z).clamp(max=1), *args[1:])
        assert torch.equal(th, theta)  # scales=(1.0,): the threshold is kept
        return psi, phi

    for fn in (match_output_mean, mse_fixed):
        psi, phi = fn(z, target, theta, 4)
        level = torch.clamp(torch.floor((z + psi[:, None]) * 4 / theta[:, None] + 0.5), 0, 4)
        torch.testing.assert_close((level * ((theta + phi) / 4)[:, None]).mean(1), target, rtol=1e-9, atol=1e-12)


def test_da_improves_output_error_over_no_calibration() -> None:
    torch.manual_seed(0)
    ann = nn.Sequential(
        nn.Conv2d(1, 8, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(8, 8, 3, padding=1),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(8 * 16, 16),
        nn.ReLU(),
        nn.Linear(16, 4),
    )
    data = _batches(4, shape=(1, 4, 4), dtype=torch.float32)
    x = _batches(1, seed=9, shape=(1, 4, 4), dtype=torch.float32)[0].repeat(8, 1, 1, 1) * 1.1
    for T in (1, 2, 4):
        cfg = ConversionConfig(method="parallel", timesteps=T, per_channel=True, percentile=99.9)
        plain = a2s.convert(ann, cfg, calibration_data=data)
        snn_da = a2s.convert(ann, cfg.replace(calibration="da"), calibration_data=data)
        with torch.no_grad():
            target = ann(x)
        err = [float((a2s.simulate(s, x, mode="rate").mean_output - target).pow(2).mean()) for s in (plain, snn_da)]
        assert err[1] < err[0], (T, err)


def test_calibration_does_not_mutate_inputs() -> None:
    ann, data = _mlp(), _batches(2)
    snn = a2s.convert(ann, ConversionConfig(method="parallel", timesteps=2, per_channel=True), calibration_data=data)
    ann_state = copy.deepcopy(ann.state_dict())
    snn_state = copy.deepcopy(snn.state_dict())
    for est in ("match", "ema", "ema_theta", "mean"):
        out = calibrate_da(snn, ann, data, estimator=est, progress=False)
        assert out is not snn
    assert all(torch.equal(v, ann.state_dict()[k]) for k, v in ann_state.items())
    assert snn.state_dict().keys() == snn_state.keys()
    assert all(torch.equal(v, snn.state_dict()[k]) for k, v in snn_state.items())
    assert not snn.log or not snn.log[-1].startswith("DA")


def test_zero_batches_is_a_calibration_error() -> None:
    ann, data = _mlp(), _batches(2)
    cfg = ConversionConfig(method="parallel", timesteps=2, per_channel=True)
    snn = a2s.convert(ann, cfg, calibration_data=data)
    with pytest.raises(CalibrationError, match="no batches"):
        calibrate_da(snn, ann, [], progress=False)
    with pytest.raises(CalibrationError):
        calibrate(snn, ann, None, cfg.replace(calibration="da"))  # type: ignore[arg-type]
    qann = a2s.prepare(_mlp(), a2s.QuantConfig(levels=4, threshold=1.0))
    with pytest.raises(CalibrationError, match="no batches"):
        a2s.convert(qann, ConversionConfig(timesteps=2, calibration="da"), calibration_data=[])


def test_wrong_ann_is_a_calibration_error() -> None:
    ann, data = _mlp(), _batches(2)
    snn = a2s.convert(ann, ConversionConfig(timesteps=2), calibration_data=data)
    other = nn.Sequential(nn.Linear(6, 3), nn.ReLU())
    with pytest.raises(CalibrationError, match="does not match"):
        calibrate_da(snn, other, data, progress=False)


def test_config_validation_and_json_round_trip() -> None:
    cfg = ConversionConfig(calibration="da", estimator="ema", ema_alpha=0.9, calibration_batches=4)
    assert ConversionConfig.from_dict(cfg.to_dict()) == cfg
    for bad in (
        dict(calibration="dda"),
        dict(estimator="median"),
        dict(ema_alpha=1.0),
        dict(ema_alpha=0.0),
        dict(calibration_batches=0),
        dict(calibration="da", method="serial"),
        dict(calibration="li_bias", method="parallel"),
        dict(threshold_mode="mse2"),
    ):
        with pytest.raises(ConfigError):
            ConversionConfig(**bad)


def test_qcfs_model_at_other_T_conv_and_linear_sites() -> None:
    torch.manual_seed(0)
    ann = nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1),
        nn.BatchNorm2d(4),
        nn.ReLU(),
        nn.AvgPool2d(2),
        nn.Flatten(),
        nn.Linear(16, 8),
        nn.ReLU(),
        nn.Linear(8, 3),
    )
    qann = a2s.prepare(ann, a2s.QuantConfig(levels=8, threshold=1.0)).eval()
    data = _batches(3, shape=(1, 4, 4), dtype=torch.float32)
    snn = a2s.convert(qann, ConversionConfig(timesteps=2, calibration="da", estimator="match"), calibration_data=data)
    conv_site, lin_site = snn.neurons().values()
    assert conv_site.bias.shape == (4, 1, 1) and conv_site.amplitude_correction.shape == (4, 1, 1)
    assert lin_site.bias.shape == (8,) and lin_site.amplitude_correction.shape == (8,)
    assert any("DA calibration (match" in line for line in snn.log)
    x = data[0]
    spike = a2s.simulate(snn, x, mode="spike").mean_output
    rate = a2s.simulate(snn, x, mode="rate").mean_output
    torch.testing.assert_close(spike, rate, rtol=1e-5, atol=1e-5)


class _BasicBlock(nn.Module):
    """torchvision's BasicBlock: one nn.ReLU(inplace=True) module called twice, optional downsample."""

    def __init__(self, cin: int, cout: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        identity = x
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        if self.downsample is not None:
            identity = self.downsample(x)
        out += identity
        return self.relu(out)


class _TorchvisionStyleResNet(nn.Module):
    """Stem conv-BN-F.relu-max-pool, two stages of BasicBlocks, adaptive avg-pool, torch.flatten, fc."""

    def __init__(self, num_classes: int = 5) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(8)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        self.layer1 = nn.Sequential(_BasicBlock(8, 8), _BasicBlock(8, 8))
        self.layer2 = nn.Sequential(_BasicBlock(8, 16, 2))
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(16, num_classes)

    def forward(self, x):
        x = self.maxpool(Fn.relu(self.bn1(self.conv1(x))))
        x = self.layer2(self.layer1(x))
        return self.fc(torch.flatten(self.avgpool(x), 1))


def test_torchvision_style_resnet_converts_and_calibrates() -> None:
    torch.manual_seed(0)
    net = _TorchvisionStyleResNet()
    with torch.no_grad():  # non-trivial BN statistics
        for m in net.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-0.2, 0.2)
                m.running_var.uniform_(0.5, 1.5)
    net.eval()
    data = [torch.rand(8, 3, 32, 32, generator=torch.Generator().manual_seed(k)) for k in range(2)]
    cfg = ConversionConfig(timesteps=4, per_channel=True, calibration="da")
    before = copy.deepcopy(net.state_dict())
    snn = a2s.convert(net, cfg, calibration_data=data)
    assert all(torch.equal(v, net.state_dict()[k]) for k, v in before.items())
    assert len(snn.sites) == 7  # stem + 2 per block
    assert any("max-pool" in line for line in snn.log) and any("DA calibration" in line for line in snn.log)
    assert any(line.startswith("analog: conv1 take the analog input") for line in snn.log), snn.log
    spike = a2s.simulate(snn, data[0], mode="spike").mean_output
    rate = a2s.simulate(snn, data[0], mode="rate").mean_output
    torch.testing.assert_close(spike, rate, rtol=1e-4, atol=1e-5)


def test_convert_accepts_a_one_shot_iterator_for_thresholds_and_calibration() -> None:
    ann, data = _mlp(), _batches(3)
    cfg = ConversionConfig(timesteps=2, per_channel=True, calibration="da", calibration_batches=2)
    from_iter = a2s.convert(ann, cfg, calibration_data=iter(data))
    from_list = a2s.convert(ann, cfg, calibration_data=data)
    for a, b in zip(from_iter.neurons().values(), from_list.neurons().values(), strict=True):
        assert torch.equal(a.bias, b.bias) and torch.equal(a.amplitude_correction, b.amplitude_correction)


def test_da_is_skipped_where_qcfs_is_already_lossless():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(64, 3))
    qann = a2s.prepare(net, a2s.QuantConfig(levels=4, threshold=1.0)).double().eval()
    data = [torch.rand(8, 1, 4, 4, dtype=torch.float64) for _ in range(2)]
    snn = a2s.convert(qann, a2s.ConversionConfig(timesteps=4, calibration="da"), calibration_data=data)
    assert "skipped" in snn.log[-1]
    x = torch.rand(5, 1, 4, 4, dtype=torch.float64)
    assert torch.equal(a2s.simulate(snn, x, mode="rate").mean_output, a2s.fold_batchnorm(qann)(x))
    other = a2s.convert(qann, a2s.ConversionConfig(timesteps=2, calibration="da"), calibration_data=data)
    assert "skipped" not in " ".join(other.log)
