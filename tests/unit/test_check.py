"""``ann2snn.check`` and ``ann2snn check``: one verdict of at most ~15 lines, before any training."""

from __future__ import annotations

import _lookalikes as looks
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from typer.testing import CliRunner

import ann2snn as a2s
from ann2snn.cli import app
from ann2snn.errors import UnsupportedModelError

runner = CliRunner()


@pytest.mark.parametrize("family", sorted(looks.LOSSLESS))
def test_check_says_each_lookalike_converts_and_verifies_it(family):
    cls, kwargs, size = looks.LOSSLESS[family]
    model = looks.lively(cls(**kwargs)).float()
    report = a2s.check(model, torch.rand(2, 3, size, size))
    assert report.converts, str(report)
    text = str(report)
    assert len(report.lines) <= 15 and "converts" in report.lines[0]
    assert "lossless" in report.lines[-1] and "NOT lossless" not in text and "(0 spikes)" not in text
    assert sum(p.requires_grad for p in model.parameters()) and all(
        type(m) is not a2s.SpikingModel for m in model.modules()
    )


class SqueezeExcite(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv, self.fc1, self.fc2 = nn.Conv2d(3, 4, 3), nn.Conv2d(4, 2, 1), nn.Conv2d(2, 4, 1)
        self.norm = nn.LayerNorm(4)

    def forward(self, x):
        x = F.silu(self.conv(x))
        x = x * torch.sigmoid(self.fc2(torch.relu(self.fc1(x.mean((2, 3), keepdim=True)))))
        return self.norm(x.mean((2, 3)))


def test_check_names_out_of_reach_families_in_one_line_each():
    report = a2s.check(SqueezeExcite(), torch.rand(1, 3, 6, 6))
    assert not report.converts and len(report.lines) <= 15
    refused = [line for line in report.lines if line.startswith("refused:")]
    assert len(refused) == 4, str(report)  # SiLU, sigmoid, the gating product, LayerNorm
    assert any("x * sigmoid" in line and "sums, not products" in line for line in refused)
    assert any("LayerNorm" in line and "standard deviation" in line for line in refused)


class Traceless(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Sequential(looks.DynamicPadConv(3, 4, 3, 2), nn.ReLU())
        self.fc = nn.Linear(4, 2)

    def forward(self, x):
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(self.stem(x), 1), 1))


def test_tracing_failure_names_the_submodule_and_the_way_out():
    with pytest.raises(UnsupportedModelError, match=r"submodule 'stem.0' \(DynamicPadConv\).*register_leaf"):
        a2s.prepare(Traceless())
    report = a2s.check(Traceless(), torch.rand(1, 3, 7, 7))
    assert not report.converts and any("'stem.0'" in line and "register_leaf" in line for line in report.lines)
    assert report.analysis.sites  # the rest of the model was still analysed


def test_check_cli_on_a_registered_model_and_exit_codes():
    ok = runner.invoke(app, ["check", "--model", "cnn", "--in-channels", "1", "--image-size", "12", "-o", "pool=max"])
    assert ok.exit_code == 0, ok.output
    lines = ok.stdout.strip().splitlines()
    assert lines[0].startswith("CNN: converts") and len(lines) <= 15 and "max-pool(s) exact" in ok.stdout
    bad = runner.invoke(app, ["check"])
    assert bad.exit_code == 2 and "--model" in bad.stderr
    bad_option = runner.invoke(app, ["check", "--model", "cnn", "-o", "pool"])
    assert bad_option.exit_code == 2 and "KEY=VALUE" in bad_option.stderr


def test_check_cli_exit_code_1_when_the_model_does_not_convert(tmp_path):
    from ann2snn.models.registry import ModelBase, list_models, register_model

    if "test_gelu_net" not in list_models():

        @register_model("test_gelu_net")
        class GeluNet(ModelBase):
            def __init__(self, num_classes: int = 10, in_channels: int = 3, image_size: int = 32) -> None:
                super().__init__("test_gelu_net", num_classes, in_channels, image_size)
                self.conv, self.act, self.fc = nn.Conv2d(in_channels, 4, 3), nn.GELU(), nn.Linear(4, num_classes)

            def forward(self, x):
                return self.fc(self.act(self.conv(x)).mean((2, 3)))

    result = runner.invoke(app, ["check", "--model", "test_gelu_net", "--image-size", "8"])
    assert result.exit_code == 1, result.output
    assert "does NOT convert" in result.stdout and "GELU" in result.stdout
    a2s.save_checkpoint(tmp_path / "cnn", a2s.create_model("cnn", num_classes=3, in_channels=1, image_size=8))
    ok = runner.invoke(app, ["check", "--checkpoint", str(tmp_path / "cnn")])
    assert ok.exit_code == 0 and "lossless" in ok.stdout, ok.output
