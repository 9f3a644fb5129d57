"""The op-support table: what runs on spikes (and why), what is refused (grouped, bounded), registration, and the
batch-dim rule of parallel spike mode (time is flattened into dim 0, so an op must act on each row on its own)."""

from __future__ import annotations

import operator

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import ann2snn as a2s
from ann2snn.errors import ConfigError, UnsupportedModelError
from ann2snn.layers.activations import QCFS
from ann2snn.transforms import registry


class Body(nn.Module):
    """conv → ReLU → ``op`` → conv → global pool → linear, for one op under test."""

    def __init__(self, op, channels: int = 4) -> None:
        super().__init__()
        self.op = op
        self.c1, self.c2 = nn.Conv2d(2, channels, 3, padding=1), nn.Conv2d(channels, 4, 1)
        self.fc = nn.Linear(4, 3)

    def forward(self, x):
        y = self.op(torch.relu(self.c1(x)))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(torch.relu(self.c2(y)), 1), 1))


MISUSES = {
    "cat along the batch": (lambda y: torch.cat([y, y], 0)[: y.shape[0]], "dim 0"),
    "mean over everything": (lambda y: y - y.mean(), "every dim"),
    "hard-coded batch size": (lambda y: y.view(3, -1).view(y.shape), "hard-codes dim 0"),
    "batch size as a value": (lambda y: y / y.size(0), "batch size"),
    "batch moved off dim 0": (lambda y: y.permute(1, 0, 2, 3).permute(1, 0, 2, 3), "moves dim 0"),
    "indexing a sample": (lambda y: y[0:3], "indexes dim 0"),
    "chunk along the batch": (lambda y: torch.cat(y.chunk(3), 0), "dim 0"),
}


@pytest.mark.parametrize("case", sorted(MISUSES))
def test_ops_mixing_the_batch_dim_are_refused_by_prepare_and_convert(case):
    op, reason = MISUSES[case]
    model = Body(op)
    model(torch.rand(3, 2, 4, 4))  # the ANN itself runs
    with pytest.raises(UnsupportedModelError, match=reason):
        a2s.prepare(model)
    with pytest.raises(UnsupportedModelError, match=reason):
        a2s.convert(model, calibration_data=[torch.rand(3, 2, 4, 4)])


def test_a_refused_batch_op_really_is_wrong_in_spike_mode(monkeypatch):
    """Sanity negative: force ``y[0:1]`` (sample 0 for all) through: in spike mode row 0 is step 0 of sample 0."""
    monkeypatch.setitem(registry.SUPPORTED_FUNCTIONS, operator.getitem, registry.OpRule("forced"))
    torch.manual_seed(0)
    q = a2s.prepare(Body(lambda y: y[0:1] + 0 * y), a2s.QuantConfig(levels=4, threshold=0.5)).double().eval()
    snn = a2s.convert(q, a2s.ConversionConfig(timesteps=4))
    snn.levels_from = "currents"  # the level plan would hide the batch mixing (levels from rate mode)
    x = torch.rand(3, 2, 4, 4, dtype=torch.float64)
    rate = a2s.simulate(snn, x, 4, mode="rate").mean_output
    spike = a2s.simulate(snn, x, 4, mode="spike").mean_output
    with torch.no_grad():
        assert (rate - q(x)).abs().max().item() < 1e-12  # rate mode (B rows) is still the ANN
    assert (spike - rate).abs().max().item() > 1e-3


class GroupMerge(nn.Module):
    """Batch merged with groups (``view(B·g, C/g, H, W)``), a per-row conv, then split back: exact on spikes."""

    def __init__(self) -> None:
        super().__init__()
        self.c1, self.g, self.c2 = nn.Conv2d(2, 4, 3, padding=1), nn.Conv2d(2, 2, 3, padding=1), nn.Conv2d(4, 3, 1)

    def forward(self, x):
        y = torch.relu(self.c1(x))
        b, c, h, w = y.shape
        y = torch.relu(self.g(y.reshape(b * 2, c // 2, h, w))).reshape(b, c, h, w)
        y = torch.relu(y.permute(0, 2, 3, 1).flatten(1, 2).transpose(1, 2).reshape(b, c, h, w))
        return torch.stack([self.c2(y).mean((2, 3)), self.c2(y).amax(dim=(2, 3)) * 0], dim=1).sum(1)


def test_batch_merging_views_and_permutations_are_exact_in_spike_mode():
    registry.register_method("amax", why="test only: max over non-batch dims of non-spike values")
    try:
        torch.manual_seed(0)
        net = GroupMerge().double().eval()
        q = a2s.prepare(net, a2s.QuantConfig(levels=4, threshold=0.7)).double().eval()
        snn = a2s.convert(q, a2s.ConversionConfig(timesteps=4))
        x = torch.rand(5, 2, 4, 4, dtype=torch.float64)
        with torch.no_grad():
            ann = q(x)
        for mode in ("spike", "rate"):
            out = a2s.simulate(snn, x, 4, mode=mode).mean_output
            assert (out - ann).abs().max().item() <= 1e-12 * ann.abs().max().item(), mode
    finally:
        registry.SUPPORTED_METHODS.pop("amax")


def test_register_function_and_method_with_why():
    class Rolls(nn.Module):
        def forward(self, x):
            return torch.roll(torch.relu(x), 1, dims=1).cummax(1).values.relu()

    with pytest.raises(UnsupportedModelError, match=r"roll\(\).*not in the op table"):
        a2s.prepare(Rolls())
    a2s.register_function(torch.roll, why="a cyclic permutation of each sample's values")
    try:
        with pytest.raises(UnsupportedModelError, match=r"\.cummax\(\)"):
            a2s.prepare(Rolls())
        with pytest.raises(ConfigError, match="why="):
            a2s.register_method("cummax", why=" ")
        with pytest.raises(TypeError):
            a2s.register_method("cummax", "positional why is refused")  # type: ignore[misc]
        assert registry.SUPPORTED_FUNCTIONS[torch.roll].why.startswith("a cyclic permutation")
    finally:
        registry.SUPPORTED_FUNCTIONS.pop(torch.roll)


def test_out_of_reach_families_are_refused_in_one_line_each():
    class Everything(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc, self.ln = nn.Linear(4, 4), nn.LayerNorm(4)
            self.attn = nn.MultiheadAttention(4, 1, batch_first=True)

        def forward(self, x):
            x = F.silu(self.fc(x)) + nn.functional.gelu(x) + F.hardswish(x)
            x = x * torch.sigmoid(self.fc(x))  # squeeze-excitation-style gating
            x = self.ln(torch.relu(x))
            x = self.attn(x[:, None], x[:, None], x[:, None])[0][:, 0]
            return torch.clamp(x, -1, 1) + F.leaky_relu(x)

    with pytest.raises(UnsupportedModelError) as info:
        a2s.prepare(Everything())
    text = str(info.value)
    families = ("SiLU/GELU", "sigmoid/tanh", "squeeze-excitation / gating", "LayerNorm", "attention", "negative-slope")
    for family in (*families, "clamp with other bounds"):
        assert sum(family in line for line in text.splitlines()) == 1, family


def test_refusal_messages_stay_short_however_many_nodes():
    model = nn.Sequential(*[m for _ in range(150) for m in (nn.Linear(4, 4), nn.GELU(), nn.LayerNorm(4))])
    with pytest.raises(UnsupportedModelError) as info:
        a2s.convert(model, calibration_data=[torch.rand(2, 4)])
    text = str(info.value)
    assert "150× SiLU/GELU" in text and "150× LayerNorm" in text
    assert len(text.splitlines()) <= 15 and len(text) < 1500


def test_prepare_refuses_up_front_what_convert_refuses():
    class LateRefusal(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc, self.norm = nn.Linear(3, 4), nn.GroupNorm(2, 4)

        def forward(self, x):
            return self.norm(torch.relu(self.fc(x)))

    with pytest.raises(UnsupportedModelError, match="GroupNorm"):
        a2s.prepare(LateRefusal())


def test_functional_batchnorm_and_dropout_in_training_mode_are_refused():
    class TrainFlags(nn.Module):
        def forward(self, x):
            x = F.batch_norm(torch.relu(x), torch.zeros(3), torch.ones(3), training=True)
            return F.dropout(x, 0.5, training=True)

    with pytest.raises(UnsupportedModelError) as info:
        a2s.convert(TrainFlags(), calibration_data=[torch.rand(2, 3)])
    assert "batch statistics" in str(info.value) and "training=True" in str(info.value)


def test_every_table_entry_says_why():
    for table in (registry.SUPPORTED_MODULES, registry.SUPPORTED_FUNCTIONS, registry.SUPPORTED_METHODS):
        assert all(len(rule.why) > 10 for rule in table.values())
    assert {"permute", "transpose", "chunk", "split", "view", "reshape", "flatten", "size"} <= set(
        registry.SUPPORTED_METHODS
    )
    assert {torch.cat, torch.stack, torch.chunk, F.pad, F.batch_norm, torch._assert} <= set(
        registry.SUPPORTED_FUNCTIONS
    )
    assert nn.ChannelShuffle in registry.SUPPORTED_MODULES and QCFS not in registry.SUPPORTED_MODULES
