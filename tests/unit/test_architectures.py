"""Conformance over look-alikes of real architectures: each converts with no user code change and is lossless at
T = L in float64, in rate AND spike mode (time flattened into the batch dim), or is refused with a grouped reason.
"""

from __future__ import annotations

import _lookalikes as looks
import pytest
import torch
from torch import nn

import ann2snn as a2s
from ann2snn.layers.activations import QCFS

L = 4


def convert_lossless(model: nn.Module, size: int, seed: int = 0) -> tuple[a2s.SpikingModel, nn.Module, float]:
    """prepare (QCFS L=4) → convert (parallel, T=L); returns the SNN, the QCFS ANN and the worst relative error."""
    net = looks.lively(model, seed)
    x = torch.rand(3, 3, size, size, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    qann = a2s.prepare(net, a2s.QuantConfig(levels=L)).double().eval()
    looks.fit_thresholds(qann, x)
    snn = a2s.convert(qann, a2s.ConversionConfig(method="parallel", timesteps=L))
    with torch.no_grad():
        ann = qann(x)
    spike = a2s.simulate(snn, x, L, mode="spike")
    rate = a2s.simulate(snn, x, L, mode="rate")
    scale = ann.abs().max().item()
    assert scale > 0
    for name, count in spike.spike_counts.items():
        assert torch.equal(count, rate.spike_counts[name]), name
    assert sum(float(c.sum()) for c in spike.spike_counts.values()) > 0, "no spikes: the test could not fail"
    err = max((spike.mean_output - ann).abs().max().item(), (rate.mean_output - ann).abs().max().item())
    return snn, qann, err / scale


@pytest.mark.parametrize("family", sorted(looks.LOSSLESS))
def test_lookalike_is_lossless_at_T_equals_L_in_spike_and_rate_mode(family):
    cls, kwargs, size = looks.LOSSLESS[family]
    for seed in (0, 1):
        snn, qann, err = convert_lossless(cls(**kwargs), size, seed)
        assert err <= 1e-12, f"{family}: relative error {err:.3g}"
        assert len(snn.sites) == sum(isinstance(m, QCFS) for m in qann.modules())


def test_relu6_sites_get_theta_b_in_prepare():
    q = a2s.prepare(looks.MobileNetV2(act="hardtanh"), a2s.QuantConfig(levels=4, threshold=1.0))
    thresholds = sorted({round(m.threshold.item(), 6) for m in q.modules() if isinstance(m, QCFS)})
    assert thresholds == [3.0, 4.0, 6.0]  # F.hardtanh(x, 0, 3), nn.Hardtanh(0, 4), nn.ReLU6 in stem and head
    clip = a2s.prepare(looks.MobileNetV2(), a2s.QuantConfig(activation="clip"))
    assert all(m.threshold.item() == 6.0 for m in clip.modules() if hasattr(m, "threshold"))
    step = a2s.prepare(looks.MobileNetV2(), a2s.QuantConfig(activation="steprelu", steps=4))
    assert {(m.step * m.steps, m.clip) for m in step.modules() if hasattr(m, "steps")} == {(6.0, True)}


def test_torch_clamp_is_a_site_not_silently_kept():
    class OnlyClamp(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b = nn.Linear(3, 4), nn.Linear(4, 2)

        def forward(self, x):
            return self.b(torch.clamp(self.a(x), 0, 6))

    q = a2s.prepare(OnlyClamp(), a2s.QuantConfig(levels=2))
    assert [m.threshold.item() for m in q.modules() if isinstance(m, QCFS)] == [6.0]
    assert not any(n.target is torch.clamp for n in q.graph.nodes)


def test_training_free_relu6_takes_b_or_the_data_threshold_capped_at_b():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 8), nn.ReLU6(), nn.Linear(8, 8), nn.Hardtanh(0.0, 0.05), nn.Linear(8, 2))
    snn = a2s.convert(model, a2s.ConversionConfig(timesteps=4))  # θ = b: no calibration data needed
    assert [float(n.threshold) for n in snn.neurons().values()] == pytest.approx([6.0, 0.05])
    assert [s.source for s in snn.sites] == ["clamp", "clamp"] and "clamp bound 6" in snn.summary()
    data = [torch.randn(64, 3) for _ in range(2)]
    snn = a2s.convert(model, a2s.ConversionConfig(threshold_mode="max"), calibration_data=data)
    first = max(torch.relu(model[0](x)).max().item() for x in data)
    assert float(snn.neurons()["1"].threshold) == pytest.approx(min(first, 6.0))
    assert float(snn.neurons()["3"].threshold) == pytest.approx(0.05)  # the data max is above b: capped
    assert "at most the clamp bound 0.05" in snn.summary()


def test_da_calibration_on_a_relu6_model_uses_the_clipped_reference():
    from ann2snn.calibrate.reference import reference_graph
    from ann2snn.layers.activations import ClipReLU

    torch.manual_seed(0)
    model = looks.lively(looks.MobileNetV2(), 0).float()
    data = [torch.rand(8, 3, 8, 8) for _ in range(2)]
    snn = a2s.convert(model, a2s.ConversionConfig(timesteps=2, threshold_mode="percentile"), calibration_data=data)
    ref = reference_graph(model, snn)
    assert all(isinstance(ref.get_submodule(s.name), ClipReLU) for s in snn.sites)
    calibrated = a2s.convert(model, a2s.ConversionConfig(timesteps=2, calibration="da"), calibration_data=data)
    assert any("DA" in n or "calibrat" in n for n in calibrated.log)


@pytest.mark.parametrize("family", ["dense concat", "re-parameterised VGG", "timm style"])
def test_unfolded_batchnorms_are_named_in_summary_and_log(family):
    cls, kwargs, size = looks.LOSSLESS[family]
    snn, _, _ = convert_lossless(cls(**kwargs), size)
    notes = [n for n in snn.log if "kept unfolded" in n]
    assert len(notes) == 1 and "non-binary input" in notes[0] and notes[0] in snn.summary()


@pytest.mark.parametrize("family", ["inception branches", "fire modules", "dense concat", "channel shuffle"])
def test_maxpool_after_concatenated_neurons_is_noted_exact(family):
    cls, kwargs, size = looks.LOSSLESS[family]
    snn, _, err = convert_lossless(cls(**kwargs), size)
    pools = [n for n in snn.log if n.startswith("max-pool")]
    assert pools and all(": exact" in n for n in pools) and err <= 1e-12


class SpatialCat(nn.Module):
    """Two neuron layers concatenated along the width, then max-pooled: windows mix two amplitudes."""

    def __init__(self) -> None:
        super().__init__()
        self.a, self.b = nn.Conv2d(1, 1, 1), nn.Conv2d(1, 1, 1)
        self.fc = nn.Linear(3, 2)

    def forward(self, x):
        y = torch.cat([torch.relu(self.a(x)), torch.relu(self.b(x))], dim=3)  # [B, 1, 2, 4]
        return self.fc(torch.flatten(nn.functional.max_pool2d(y, (2, 2), stride=(2, 1)), 1))  # [B, 3]


def test_maxpool_over_a_spatial_concat_of_two_amplitudes_is_noted_inexact_and_is():
    torch.manual_seed(3)
    net = SpatialCat().double().eval()
    for conv in (net.a, net.b):
        conv.weight.data.fill_(1.0)
        conv.bias.data.zero_()
    qann = a2s.prepare(net, a2s.QuantConfig(levels=4)).double().eval()
    thresholds = iter([1.0, 3.0])
    for m in qann.modules():
        if isinstance(m, QCFS):
            m.threshold.data.fill_(next(thresholds))
    snn = a2s.convert(qann, a2s.ConversionConfig(timesteps=4))
    assert any("NOT exact" in n and "different amplitudes" in n for n in snn.log)
    x = torch.rand(64, 1, 2, 2, dtype=torch.float64) * 3
    with torch.no_grad():
        ann = qann(x)
    spike = a2s.simulate(snn, x, 4).mean_output
    assert (spike - ann).abs().max().item() > 1e-3  # the note is right: the pool really is inexact here
