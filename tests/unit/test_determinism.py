"""Determinism on CPU: the same seed gives the same trained weights and bit-identical SNN outputs."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import ann2snn as a2s

torch.set_num_threads(1)


def _data() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return torch.rand(96, 1, 8, 8, generator=g), torch.randint(0, 4, (96,), generator=g)


def _trained(seed: int) -> nn.Module:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = a2s.create_model("cnn", num_classes=4, in_channels=1, image_size=8, hidden=16)
    qann = a2s.prepare(net, a2s.QuantConfig(levels=4))
    config = a2s.TrainConfig(epochs=2, batch_size=16, lr=0.05, seed=seed, device="cpu")
    return a2s.train(qann, _data(), config, progress=False).model


@pytest.fixture(scope="module")
def twins() -> tuple[nn.Module, nn.Module]:
    return _trained(5), _trained(5)


def test_same_seed_same_weights(twins: tuple[nn.Module, nn.Module]) -> None:
    a, b = twins
    for (name, pa), pb in zip(a.state_dict().items(), b.state_dict().values(), strict=True):
        assert torch.equal(pa, pb), name


def test_other_seed_other_weights(twins: tuple[nn.Module, nn.Module]) -> None:
    """Sanity negative: the comparison above can fail."""
    other = _trained(6)
    assert not all(torch.equal(p, q) for p, q in zip(twins[0].parameters(), other.parameters(), strict=True))


@pytest.mark.parametrize(("method", "mode"), [("serial", "spike"), ("parallel", "spike"), ("parallel", "rate")])
def test_same_seed_same_snn_outputs(twins: tuple[nn.Module, nn.Module], method: str, mode: str) -> None:
    x = _data()[0][:32]
    config = a2s.ConversionConfig(method=method, timesteps=4)
    runs = [a2s.simulate(a2s.convert(model, config), x, mode=mode) for model in (*twins, twins[0])]
    for res in runs[1:]:
        assert torch.equal(res.mean_output, runs[0].mean_output)
        if mode == "spike":
            assert res.outputs is not None and runs[0].outputs is not None
            assert torch.equal(res.outputs, runs[0].outputs)
        for name, counts in runs[0].spike_counts.items():
            assert torch.equal(res.spike_counts[name], counts), name


def test_data_calibrated_conversion_is_deterministic() -> None:
    """Percentile thresholds use a seeded subsample: two conversions of a ReLU model agree exactly."""
    torch.manual_seed(0)
    net = a2s.create_model("cnn", num_classes=4, in_channels=1, image_size=8, hidden=16)
    calib = [_data()[0][i : i + 32] for i in (0, 32)]
    config = a2s.ConversionConfig(method="parallel", timesteps=4, threshold_mode="percentile", per_channel=True)
    x = _data()[0][64:]
    outs = [a2s.simulate(a2s.convert(net, config, calibration_data=calib), x).mean_output for _ in range(2)]
    assert torch.equal(outs[0], outs[1])
