"""evaluate_robustness and the ``robustness`` CLI on a quickly trained digits model."""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import ann2snn as a2s
from ann2snn.errors import ConfigError
from ann2snn.evaluate.noise import Attack, corrupt
from ann2snn.evaluate.robustness import evaluate_robustness, rate_gradients

STEP = {"step": 0.125, "steps": 8}


@pytest.fixture(scope="module")
def trained() -> tuple[nn.Module, list]:
    torch.manual_seed(0)
    data = a2s.load_dataset("digits", "train")
    x = torch.stack([d[0] for d in data])
    y = torch.stack([d[1] for d in data])
    m = nn.Sequential(nn.Flatten(), nn.Linear(64, 48), nn.ReLU(), nn.Linear(48, 10))
    q = a2s.prepare(m, a2s.QuantConfig(activation="steprelu", **STEP))
    opt = torch.optim.Adam(q.parameters(), 1e-2)
    for _ in range(150):
        opt.zero_grad()
        F.cross_entropy(q(x), y).backward()
        opt.step()
    test = a2s.load_dataset("digits", "test", limit=256)
    return q.eval(), list(a2s.make_loader(test, 128, shuffle=False))


def test_attacks_increase_the_loss(trained) -> None:
    ann, loader = trained
    x = torch.cat([b[0] for b in loader])
    y = torch.cat([b[1] for b in loader])
    with torch.no_grad():
        clean = F.cross_entropy(ann(x), y).item()
    g = torch.Generator().manual_seed(0)
    for attack in (Attack("sp", 0.1), Attack("gauss", 0.2), Attack("fgsm", 0.05), Attack("pgd", 0.05)):
        with torch.no_grad():
            loss = F.cross_entropy(ann(corrupt(attack, x, y, ann, generator=g)), y).item()
        assert loss > clean, attack
    with torch.no_grad():
        fgsm_loss = F.cross_entropy(ann(corrupt(Attack("fgsm", 0.05), x, y, ann)), y).item()
        pgd_loss = F.cross_entropy(ann(corrupt(Attack("pgd", 0.05), x, y, ann, generator=g)), y).item()
    assert pgd_loss >= fgsm_loss  # the iterative attack is at least as strong


def test_snn_at_T_equal_n_matches_ann_under_every_attack(trained) -> None:
    ann, loader = trained
    snn = a2s.convert(ann, a2s.ConversionConfig(method="steprelu", timesteps=8))
    res = evaluate_robustness(snn, loader, "sp:0.05,gauss:0.1,fgsm:0.03", (2, 8), ann=ann, seed=3, progress=False)
    for attack in ("clean", "sp:0.05", "gauss:0.1", "fgsm:0.03"):
        assert res.accuracy("snn", attack, 8) == res.accuracy("ann", attack)  # same images, exact SNN
    assert res.accuracy("ann", "clean") > 80
    assert res.accuracy("ann", "fgsm:0.03") < res.accuracy("ann", "clean")
    assert {r["gradient"] for r in res.rows if r["attack"] == "fgsm:0.03"} == {"ann"}
    again = evaluate_robustness(snn, loader, "sp:0.05", (8,), ann=ann, seed=3, progress=False)
    assert again.accuracy("snn", "sp:0.05", 8) == res.accuracy("snn", "sp:0.05", 8)  # seeded
    md = res.to_markdown()
    assert "fgsm:0.03 (ann grad)" in md and "| snn | 8 |" in md
    assert json.loads(res.to_json())["num_samples"] == 256


def test_snn_gradients_and_errors(trained) -> None:
    ann, loader = trained
    snn = a2s.convert(ann, a2s.ConversionConfig(method="steprelu", timesteps=8))
    res = evaluate_robustness(snn, loader[:1], "fgsm:0.05", (8,), gradient="snn", progress=False)
    assert res.rows[-1]["gradient"] == "snn rate T=8"
    assert res.accuracy("snn", "fgsm:0.05", 8) < res.accuracy("snn", "clean", 8)
    x, y = loader[0]
    with rate_gradients(snn) as f:
        grad = torch.autograd.functional.vjp(lambda xb: F.cross_entropy(f(xb, 8), y), x)[1]
    assert grad.abs().sum() > 0  # straight-through: nonzero gradients through the spiking staircase
    qcfs = a2s.prepare(nn.Sequential(nn.Flatten(), nn.Linear(64, 10), nn.ReLU(), nn.Linear(10, 10)))
    serial = a2s.convert(qcfs, a2s.ConversionConfig(method="serial", timesteps=4))
    with pytest.raises(ConfigError, match="parallel"):
        evaluate_robustness(serial, loader[:1], "fgsm:0.05", (4,), gradient="snn", progress=False)
    with pytest.raises(ConfigError, match="ann="):
        evaluate_robustness(serial, loader[:1], "fgsm:0.05", (4,), gradient="ann", progress=False)
    res = evaluate_robustness(serial, loader[:1], "sp:0.05", (1, 4), progress=False)  # serial: prefix reads
    assert [r["timesteps"] for r in res.rows] == [1, 1, 4, 4]


def test_cli_robustness(tmp_path) -> None:
    from typer.testing import CliRunner

    from ann2snn.cli import app

    torch.manual_seed(0)
    model = a2s.create_model("cnn", num_classes=10, in_channels=1, image_size=8, hidden=16)
    ann = a2s.prepare(model, a2s.QuantConfig(activation="steprelu", **STEP))
    a2s.save_checkpoint(tmp_path / "final", ann, quant=a2s.QuantConfig(activation="steprelu", **STEP), dataset="digits")
    out = tmp_path / "r.json"
    args = ["robustness", "-c", str(tmp_path / "final"), "--attacks", "sp:0.05,fgsm:0.02", "-T", "4,8"]
    result = CliRunner().invoke(app, [*args, "--limit", "64", "--json", str(out), "-q"])
    assert result.exit_code == 0, result.output
    data = json.loads(out.read_text())
    assert data["meta"]["method"] == "steprelu" and data["num_samples"] == 64
    bad = CliRunner().invoke(app, [*args[:-2], "--attacks", "blur:1"])
    assert bad.exit_code == 2 and "blur" in bad.output
