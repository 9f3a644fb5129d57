"""prepare/convert find every ReLU form, never mutate the user's model, and name what they cannot handle."""

import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import ann2snn as a2s
from ann2snn.errors import ConfigError, UnsupportedModelError
from ann2snn.layers import QCFS, IFNeuron, ParallelIFNeuron


class AllReluForms(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3, padding=1)
        self.bn = nn.BatchNorm2d(4)
        self.act = nn.ReLU()
        self.act_inplace = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(4, 4, 3, padding=1)
        self.fc1 = nn.Linear(4 * 4 * 4, 16)
        self.fc2 = nn.Linear(16, 16)
        self.fc3 = nn.Linear(16, 16)
        self.head = nn.Linear(16, 3)

    def forward(self, x):
        x = self.act(self.bn(self.conv(x)))  # nn.ReLU
        x = self.act_inplace(self.conv2(x))  # inplace nn.ReLU
        x = F.avg_pool2d(x, 2)
        x = torch.flatten(x, 1)
        x = F.relu(self.fc1(x))  # F.relu
        x = torch.relu(self.fc2(x))  # torch.relu
        x = self.fc3(x).relu()  # Tensor.relu
        x = torch.clamp(x, min=0)  # clamp(min=0)
        return self.head(x)


def _state(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


def test_prepare_finds_every_relu_form_and_keeps_the_input():
    model = AllReluForms().eval()
    before = _state(model)
    reprs = repr(model)
    q = a2s.prepare(model, a2s.QuantConfig(levels=4))
    assert sum(isinstance(m, QCFS) for m in q.modules()) == 6
    assert not any(type(m) is nn.ReLU for m in q.modules())
    assert repr(model) == reprs
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    x = torch.randn(2, 1, 8, 8)
    assert q(x).shape == (2, 3)


def test_prepare_keeps_the_class_of_a_module_only_model():
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    q = a2s.prepare(model)
    assert type(q) is nn.Sequential and isinstance(q[1], QCFS)
    assert isinstance(model[1], nn.ReLU)


def test_shared_relu_module_gets_one_activation_per_site():
    class Shared(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b, self.relu = nn.Linear(3, 3), nn.Linear(3, 3), nn.ReLU()

        def forward(self, x):
            return self.b(self.relu(self.relu(self.a(x))))

    q = a2s.prepare(Shared())
    assert sum(isinstance(m, QCFS) for m in q.modules()) == 2


@pytest.mark.parametrize("method,neuron", [("parallel", ParallelIFNeuron), ("serial", IFNeuron)])
def test_convert_replaces_every_site_and_does_not_mutate(method, neuron):
    q = a2s.prepare(AllReluForms(), a2s.QuantConfig(levels=4, threshold=2.0)).eval()
    before = _state(q)
    snn = a2s.convert(q, a2s.ConversionConfig(method=method, timesteps=4))
    assert len(snn.neurons()) == 6 and all(isinstance(m, neuron) for m in snn.neurons().values())
    assert not any(isinstance(m, (QCFS, nn.BatchNorm2d)) for m in snn.modules())
    assert all(torch.equal(before[k], v) for k, v in q.state_dict().items())
    assert any(isinstance(m, nn.BatchNorm2d) for m in q.modules())
    res = a2s.simulate(snn, torch.rand(3, 1, 8, 8))
    assert res.outputs.shape == (4, 3, 3) and res.mean_output.shape == (3, 3)
    assert set(res.spike_counts) == set(snn.neurons())


def test_unsupported_activation_is_named():
    model = nn.Sequential(nn.Linear(3, 4), nn.GELU(), nn.Linear(4, 4), nn.ReLU(), nn.Linear(4, 2))
    with pytest.raises(UnsupportedModelError, match=r"'1' \(GELU\)"):
        a2s.prepare(model)
    with pytest.raises(UnsupportedModelError, match="GELU"):
        a2s.convert(model, calibration_data=[torch.randn(4, 3)])


def test_unsupported_layer_in_convert_names_the_module():
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.LayerNorm(4), nn.Linear(4, 2))
    with pytest.raises(UnsupportedModelError, match=r"'2' \(LayerNorm\)"):
        a2s.convert(model, calibration_data=[torch.randn(4, 3)])


def test_plain_relu_needs_calibration_data_and_gets_data_thresholds():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 8), nn.ReLU(), nn.Linear(8, 2)).eval()
    with pytest.raises(ConfigError, match="calibration_data"):
        a2s.convert(model)
    data = [torch.randn(64, 3) for _ in range(3)]
    snn_max = a2s.convert(model, a2s.ConversionConfig(threshold_mode="max"), calibration_data=data)
    expected = max(float(torch.relu(model[0](x)).max().detach()) for x in data)
    assert snn_max.neurons()["1"].threshold.item() == pytest.approx(expected)
    snn_pc = a2s.convert(
        model, a2s.ConversionConfig(threshold_mode="percentile", per_channel=True), calibration_data=data
    )
    th = snn_pc.neurons()["1"].threshold
    assert th.shape == (8,) and torch.all(th > 0) and torch.all(th <= expected + 1e-6)


def test_model_with_dropout_and_adaptive_pool_converts():
    model = nn.Sequential(
        nn.Conv2d(1, 2, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(0.5), nn.Linear(2, 2)
    )
    q = a2s.prepare(model, a2s.QuantConfig(levels=2, threshold=1.0)).eval()
    snn = a2s.convert(q, a2s.ConversionConfig(timesteps=2))
    x = torch.rand(4, 1, 6, 6)
    torch.testing.assert_close(a2s.simulate(snn, x, mode="rate").mean_output, q(x))


def test_deepcopy_of_snn_and_rate_mode_rejected_for_serial():
    q = a2s.prepare(nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2)))
    snn = a2s.convert(q, a2s.ConversionConfig(method="serial"))
    copy.deepcopy(snn)
    with pytest.raises(ConfigError, match="rate mode"):
        a2s.simulate(snn, torch.rand(2, 3), mode="rate")


def test_maxpool_note_says_whether_it_is_exact():
    model = nn.Sequential(
        nn.Conv2d(1, 2, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(2, 2, 3, padding=1),
        nn.AvgPool2d(1),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(8, 2),
    )
    q = a2s.prepare(model, a2s.QuantConfig(levels=2, threshold=1.0))
    parallel = a2s.convert(q, a2s.ConversionConfig(timesteps=2))
    exact = [n for n in parallel.log if "'2'" in n]
    inexact = [n for n in parallel.log if "'5'" in n]
    assert exact and ": exact" in exact[0]
    assert inexact and "NOT exact" in inexact[0]
    serial = a2s.convert(q, a2s.ConversionConfig(method="serial", timesteps=2))
    assert all("not exact" in n for n in serial.log if "max-pool" in n)


def test_preparing_a_prepared_model_is_an_error():
    q = a2s.prepare(nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2)))
    with pytest.raises(ConfigError, match="already prepared"):
        a2s.prepare(q, a2s.QuantConfig(levels=2))
