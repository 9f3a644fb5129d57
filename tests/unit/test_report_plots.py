"""Report plots: a tick label at every plotted T, layer errors at T = L, round-off not drawn as error."""

from __future__ import annotations

import json

import matplotlib.pyplot as plt
import pytest
import torch
from torch import nn

import ann2snn as a2s
from ann2snn.evaluate.comparison import ComparisonReport
from ann2snn.evaluate.html import layer_error_timesteps, round_off_floor, write_full_report


def _qcfs(levels: int = 4) -> nn.Module:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Flatten(), nn.Linear(16, 8), nn.ReLU(), nn.Linear(8, 3))
    return a2s.prepare(net, a2s.QuantConfig(levels=levels, threshold=1.0)).double().eval()


def _ticks(fig) -> list[str]:
    labels = [t.get_text() for t in fig.axes[0].get_xticklabels()]
    plt.close(fig)
    return labels


def test_compare_plot_labels_every_plotted_latency():
    rows = [
        {"method": m, "total_timesteps": tt, "accuracy": 50.0}
        for m, tts in (("parallel", (1, 2, 4, 8)), ("srp", (5, 6, 8, 12)))
        for tt in tts
    ]
    report = ComparisonReport(["parallel", "srp"], [1, 2, 4, 8], 90.0, rows, {}, {}, 10, {})
    assert _ticks(report.figure()) == ["1", "2", "4", "5", "6", "8", "12"]


def test_accuracy_plot_draws_and_labels_only_evaluated_T():
    ann = _qcfs()
    snn = a2s.convert(ann, a2s.ConversionConfig(method="serial", timesteps=6))
    x = torch.rand(8, 1, 4, 4, dtype=torch.float64)
    report = a2s.evaluate(ann, snn, [(x, torch.randint(0, 3, (8,)))], (1, 3, 6))
    fig = report.figure()
    drawn = sorted(fig.axes[0].lines[0].get_xdata().tolist())
    assert drawn == [1, 3, 6] and _ticks(fig) == ["1", "3", "6"]


def test_round_off_floor():
    assert round_off_floor([9e-7, 2e-8]) == ([0.0, 0.0], "all below 1e-06 (float round-off): no conversion error")
    assert round_off_floor([9e-7, 0.2]) == ([0.0, 0.2], None)
    assert round_off_floor([]) == ([], None)


@pytest.mark.parametrize(
    ("method", "ts", "expected"), [("parallel", (1, 2, 4, 8), 4), ("parallel", (1, 2, 8), 8), ("serial", (2, 4, 8), 8)]
)
def test_layer_error_T_is_L_for_parallel_qcfs(method, ts, expected):
    snn = a2s.convert(_qcfs(4), a2s.ConversionConfig(method=method, timesteps=max(ts)))
    assert layer_error_timesteps(snn, list(ts)) == expected


def test_full_report_layer_error_at_T_equal_L_is_round_off(tmp_path):
    ann = _qcfs(4)
    snn = a2s.convert(ann, a2s.ConversionConfig(method="parallel", timesteps=8))
    x = torch.rand(16, 1, 4, 4, dtype=torch.float64)
    report = a2s.evaluate(ann, snn, [(x, torch.randint(0, 3, (16,)))], (1, 2, 4, 8))
    paths = write_full_report(report, ann, snn, x, tmp_path)
    data = json.loads(paths["json"].read_text())
    assert data["extra"]["layer_error_timesteps"] == 4
    assert all(e["max_abs_error"] < 1e-9 for e in data["extra"]["layer_error"].values())
    assert "Layer error at T = 4" in paths["markdown"].read_text()
