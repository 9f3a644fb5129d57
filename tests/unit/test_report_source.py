"""Reports say what they measured: model, dataset, split, sample count, checkpoint and hash, version, wall time."""

from __future__ import annotations

import json
from pathlib import Path

import torch

import ann2snn as a2s
from ann2snn.evaluate.html import write_full_report
from ann2snn.export.checkpoint import save_checkpoint


def _checkpoint(tmp_path: Path) -> a2s.Checkpoint:
    qcfg = a2s.QuantConfig(levels=4)
    ann = a2s.prepare(a2s.create_model("cnn", num_classes=10, in_channels=1, image_size=8, hidden=8), qcfg)
    save_checkpoint(tmp_path / "ck", ann, quant=qcfg, dataset="digits")
    return a2s.load_checkpoint(tmp_path / "ck")


def test_report_names_model_data_checkpoint_version_and_times(tmp_path: Path) -> None:
    ckpt = _checkpoint(tmp_path)
    test = a2s.make_loader(a2s.load_dataset("digits", "val", limit=40), 16, shuffle=False)
    snn = a2s.convert(ckpt.model, a2s.ConversionConfig(method="parallel", timesteps=4))
    report = a2s.evaluate(ckpt.model, snn, test, (2, 4), source=ckpt.source)
    sha = json.loads((tmp_path / "ck.json").read_text())["weights"]["sha256"]
    assert report.source == {
        "model": "cnn",
        "dataset": "digits",
        "split": "test",
        "checkpoint": str(tmp_path / "ck"),
        "checkpoint_sha256": sha,
        "ann2snn_version": a2s.__version__,
    }
    assert set(report.timings) == {"convert", "evaluate"} and report.timings["evaluate"] == report.seconds
    paths = write_full_report(report, ckpt.model, snn, next(iter(test))[0], tmp_path / "out")
    md, page = paths["markdown"].read_text(), paths["html"].read_text()
    for text in (md, page):
        parts = ("cnn", "digits, test split, 40 samples", sha, a2s.__version__, "wall time", "(convert ", "evaluate ")
        for part in parts:
            assert part in text, part
    # each spikes/sample column says over how many samples it averages (report: 40 samples, costs: one batch)
    assert "spikes/sample (mean of 40)" in md and "spikes/sample (mean of 16)" in md
    saved = json.loads(paths["json"].read_text())
    assert saved["source"]["checkpoint_sha256"] == sha and "evaluate" in saved["timings"]


def test_report_without_names_says_so() -> None:
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 3), torch.nn.ReLU(), torch.nn.Linear(3, 2))
    x = torch.rand(8, 1, 2, 2)
    snn = a2s.convert(net, a2s.ConversionConfig(method="parallel", timesteps=2), calibration_data=[x])
    report = a2s.evaluate(net, snn, [(x, torch.zeros(8, dtype=torch.long))], (2,))
    about = dict(report.about())
    assert about["model"] == "Sequential"
    assert about["data"] == "unnamed data, 8 samples"
    assert about["checkpoint"] == "none (in-memory model)"
    assert about["wall time"].endswith(f"evaluate {report.seconds:.1f} s)")


def test_cli_evaluate_report_names_the_checkpoint(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from ann2snn.cli import app

    _checkpoint(tmp_path)
    sha = json.loads((tmp_path / "ck.json").read_text())["weights"]["sha256"]
    out = tmp_path / "report"
    args = ["evaluate", "--checkpoint", str(tmp_path / "ck"), "--limit", "24", "-T", "2,4", "--out", str(out), "-q"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    md = (out / "report.md").read_text()
    assert f"| checkpoint | {tmp_path / 'ck'} (sha256 {sha}) |" in md
    assert "| data | digits, test split, 24 samples |" in md
