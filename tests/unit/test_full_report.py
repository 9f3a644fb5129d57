"""Layer error and the full (Markdown + HTML + PNG + JSON) report."""

from __future__ import annotations

import json

import torch
from torch import nn

import ann2snn as a2s
from ann2snn.evaluate.html import write_full_report
from ann2snn.evaluate.layer_error import layer_errors


def _model():
    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1),
        nn.ReLU(),
        nn.AvgPool2d(2),
        nn.Flatten(),
        nn.Linear(16, 8),
        nn.ReLU(),
        nn.Linear(8, 3),
    )
    q = a2s.prepare(net, a2s.QuantConfig(levels=4, threshold=1.0)).double().eval()
    return q


def test_layer_error_is_zero_for_parallel_at_T_equal_L_and_not_for_serial():
    ann = _model()
    x = torch.rand(16, 1, 4, 4, dtype=torch.float64)
    par = layer_errors(ann, a2s.convert(ann, a2s.ConversionConfig(method="parallel", timesteps=4)), x, 4)
    assert list(par) == ["1", "5"]
    assert all(e["max_abs_error"] < 1e-12 for e in par.values())
    ser = layer_errors(ann, a2s.convert(ann, a2s.ConversionConfig(method="serial", timesteps=2)), x, 2)
    assert max(e["mean_abs_error"] for e in ser.values()) > 1e-3  # sanity negative: T != L, serial neurons


def test_write_full_report_writes_every_file(tmp_path):
    ann = _model()
    snn = a2s.convert(ann, a2s.ConversionConfig(method="serial", timesteps=4))
    x = torch.rand(12, 1, 4, 4, dtype=torch.float64)
    loader = [(x, torch.randint(0, 3, (12,)))]
    report = a2s.evaluate(ann, snn, loader, (1, 2, 4))
    paths = write_full_report(report, ann, snn, x, tmp_path)
    assert {p.name for p in tmp_path.iterdir()} == {
        "report.json",
        "report.md",
        "report.html",
        "accuracy_vs_T.png",
        "firing_rates.png",
        "layer_error.png",
    }
    data = json.loads(paths["json"].read_text())
    assert data["extra"]["cost"]["sops"] > 0 and set(data["extra"]["layer_error"]) == {"1", "5"}
    page = paths["html"].read_text()
    assert page.count("data:image/png;base64,") == 3 and "<table>" in page
    md = paths["markdown"].read_text()
    assert "![firing rates](firing_rates.png)" in md and "SOPs" in md and "Layer error" in md
