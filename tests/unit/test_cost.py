"""SOPs, fan-out and MACs against hand counts."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import ann2snn as a2s
from ann2snn.evaluate.cost import E_AC_PJ, E_MAC_PJ, add_cost, ann_macs, fanout_maps, spike_cost


def _qann(model, levels=4):
    torch.manual_seed(0)
    return a2s.prepare(model, a2s.QuantConfig(levels=levels, threshold=1.0)).double().eval()


def test_two_layer_mlp_sops_equal_spikes_times_fanout():
    ann = _qann(nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2)))
    snn = a2s.convert(ann, a2s.ConversionConfig(method="serial", timesteps=4))
    maps, analog = fanout_maps(snn, (3,))
    assert torch.equal(maps["1"], torch.full((4,), 2.0, dtype=torch.float64))  # each hidden neuron drives 2 outputs
    assert analog == {"0": 12}  # 4 outputs x 3 inputs, every step
    x = torch.rand(6, 3, dtype=torch.float64) * 3
    cost = spike_cost(snn, x, 4, ann)
    spikes = a2s.simulate(snn, x, 4).spike_counts["1"].mean().item()
    assert cost.layers[0]["spikes"] == pytest.approx(spikes)
    assert cost.sops == pytest.approx(2 * spikes)  # hand count: every spike is 2 accumulates
    assert cost.snn_macs == 4 * 12 and cost.ann_macs == 12 + 8
    assert cost.snn_energy_pj == pytest.approx(cost.sops * E_AC_PJ + 48 * E_MAC_PJ)
    assert cost.ann_energy_pj == pytest.approx(20 * E_MAC_PJ)


def test_conv_fanout_counts_padded_borders_by_hand():
    # 3x3 conv with padding 1 on a 4x4 map into 2 channels: corner 2*4, edge 2*6, interior 2*9 synapses.
    ann = _qann(nn.Sequential(nn.Conv2d(1, 1, 3, padding=1), nn.ReLU(), nn.Conv2d(1, 2, 3, padding=1)))
    snn = a2s.convert(ann, a2s.ConversionConfig(method="serial", timesteps=2))
    maps, analog = fanout_maps(snn, (1, 4, 4))
    expected = torch.tensor(
        [[8, 12, 12, 8], [12, 18, 18, 12], [12, 18, 18, 12], [8, 12, 12, 8]], dtype=torch.float64
    ).unsqueeze(0)
    assert torch.equal(maps["1"], expected)
    assert analog == {"0": 16 * 9}
    assert ann_macs(ann, torch.zeros(1, 1, 4, 4, dtype=torch.float64)) == {"0": 144, "2": 2 * 16 * 9}


def test_fanout_through_avgpool_flatten_and_residual_add():
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.c1, self.a1 = nn.Conv2d(1, 2, 1), nn.ReLU()
            self.c2, self.a2 = nn.Conv2d(2, 2, 1), nn.ReLU()
            self.pool, self.fc = nn.AvgPool2d(2), nn.Linear(2, 3)

        def forward(self, x):
            x = self.a1(self.c1(x))
            x = self.a2(self.c2(x) + x)  # a1 feeds c2 (2 synapses) and the add (no synapse)
            return self.fc(torch.flatten(self.pool(x), 1))

    snn = a2s.convert(_qann(Net()), a2s.ConversionConfig(method="serial", timesteps=2))
    maps, _ = fanout_maps(snn, (1, 2, 2))
    assert torch.equal(maps["a1"], torch.full((2, 2, 2), 2.0, dtype=torch.float64))
    assert torch.equal(maps["a2"], torch.full((2, 2, 2), 3.0, dtype=torch.float64))  # pool -> 3 fc outputs


def test_parallel_sops_match_serial_counting_and_report_section():
    ann = _qann(nn.Sequential(nn.Linear(3, 5), nn.ReLU(), nn.Linear(5, 4), nn.ReLU(), nn.Linear(4, 2)))
    snn = a2s.convert(ann, a2s.ConversionConfig(method="parallel", timesteps=4))
    x = torch.rand(8, 3, dtype=torch.float64) * 2
    res = a2s.simulate(snn, x, 4, mode="rate")
    cost = spike_cost(snn, x, 4)
    assert cost.layers[0]["spikes"] == pytest.approx(res.spike_counts["1"].mean().item())
    assert cost.sops == pytest.approx(4 * res.spike_counts["1"].mean().item() + 2 * res.spike_counts["3"].mean().item())
    loader = [(x, torch.zeros(8, dtype=torch.long))]
    report = a2s.evaluate(ann, snn, loader, (2, 4))
    add_cost(report, ann, snn, x)
    assert report.extra["cost"]["sops"] == pytest.approx(cost.sops)
    assert "SOPs" in report.to_markdown()
