"""Passes that only make sense for some methods refuse the others with a clear error."""

import pytest
import torch
from torch import nn

import ann2snn as a2s
from ann2snn.calibrate.da import calibrate_da
from ann2snn.errors import ConfigError, ExportError
from ann2snn.export.nir import export_nir


@pytest.fixture()
def steprelu_snn():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 6), nn.ReLU(), nn.Linear(6, 3))
    ann = a2s.prepare(model, a2s.QuantConfig(activation="steprelu", step=0.25, steps=4)).eval()
    return ann, a2s.convert(ann, a2s.ConversionConfig(method="steprelu", timesteps=4))


def test_da_calibration_refuses_a_steprelu_snn(steprelu_snn):
    ann, snn = steprelu_snn
    with pytest.raises(ConfigError, match="method='parallel'"):
        calibrate_da(snn, ann, [torch.rand(8, 4)])


def test_nir_export_refuses_a_steprelu_snn(steprelu_snn, tmp_path):
    _, snn = steprelu_snn
    with pytest.raises(ExportError, match="StepReLU neuron"):
        export_nir(snn, tmp_path / "m.nir", input_shape=(4,), extensions=True)
    assert not (tmp_path / "m.nir").exists()
