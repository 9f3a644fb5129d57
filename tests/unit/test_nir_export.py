"""NIR export: write, read back with nir.read, simulate with a small reference interpreter, compare with ann2snn."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

import ann2snn as a2s
from ann2snn.errors import ExportError
from ann2snn.export.nir import export_nir, to_nir

nir = pytest.importorskip("nir")


# ------------------------------------------------------------------------------ reference NIR interpreter
def _meta(node, key, default=None):
    value = node.metadata.get(key, default) if node.metadata else default
    return value.decode() if isinstance(value, bytes) else value


def _order(graph):
    indeg = {n: 0 for n in graph.nodes}
    for _, d in graph.edges:
        indeg[d] += 1
    ready, order = [n for n, k in indeg.items() if k == 0], []
    while ready:
        n = ready.pop(0)
        order.append(n)
        for s, d in graph.edges:
            if s == n:
                indeg[d] -= 1
                if indeg[d] == 0:
                    ready.append(d)
    assert len(order) == len(graph.nodes), "graph has a cycle"
    return order


def run_nir(graph, x: torch.Tensor, timesteps: int) -> torch.Tensor:
    """Discrete-time (dt = 1) interpreter of a NIR graph with ann2snn's documented metadata extension.

    Direct encoding (x every step); returns the output node per step ``[T, B, ...]``. Neurons: NIR's
    ``v > v_threshold`` spike test and reset to ``v_reset``, or, with ``ann2snn_reset = "subtract"``,
    subtraction of ``ann2snn_reset_amount``; ``v(0) = ann2snn_v_init`` (else 0); LIF by forward Euler.
    """
    t = lambda a: torch.as_tensor(np.asarray(a), dtype=x.dtype)  # noqa: E731
    order = _order(graph)
    state: dict[str, torch.Tensor] = {}
    outs = []
    for _ in range(timesteps):
        val: dict[str, torch.Tensor] = {}
        for name in order:
            node = graph.nodes[name]
            srcs = [val[s] for s, d in graph.edges if d == name]
            inp = sum(srcs[1:], srcs[0]) if srcs else None
            if isinstance(node, nir.Input):
                y = x
            elif isinstance(node, nir.Output):
                y = inp
            elif isinstance(node, nir.Conv2d):
                pad = node.padding if isinstance(node.padding, str) else tuple(int(p) for p in node.padding)
                y = torch.nn.functional.conv2d(
                    inp,
                    t(node.weight),
                    t(node.bias),
                    tuple(int(s) for s in node.stride),
                    pad,
                    tuple(int(d) for d in node.dilation),
                    int(node.groups),
                )
            elif isinstance(node, nir.Affine):
                y = inp @ t(node.weight).T + t(node.bias)
            elif isinstance(node, nir.Linear):
                y = inp @ t(node.weight).T
            elif isinstance(node, nir.Scale):
                y = inp * t(node.scale)
            elif isinstance(node, (nir.AvgPool2d, nir.SumPool2d)):
                k, s, p = (tuple(int(v) for v in a) for a in (node.kernel_size, node.stride, node.padding))
                y = torch.nn.functional.avg_pool2d(
                    inp, k, s, p, divisor_override=1 if isinstance(node, nir.SumPool2d) else None
                )
            elif isinstance(node, nir.Flatten):
                end = int(node.end_dim)
                y = inp.flatten(int(node.start_dim) + 1, end + 1 if end >= 0 else end)
            elif isinstance(node, (nir.IF, nir.LIF)):
                v = state.get(name)
                if v is None:
                    v0 = _meta(node, "ann2snn_v_init")
                    v = torch.zeros_like(inp) + (t(v0) if v0 is not None else 0)
                if isinstance(node, nir.IF):
                    v = v + t(node.r) * inp
                else:  # tau dv/dt = (v_leak - v) + R I, Euler with dt = 1
                    v = v + ((t(node.v_leak) - v) + t(node.r) * inp) / t(node.tau)
                delta = _meta(node, "ann2snn_leak_delta")
                if delta is not None:
                    v = v - t(delta)
                z = (v > t(node.v_threshold)).to(x.dtype)
                if _meta(node, "ann2snn_reset") == "subtract":
                    v = v - z * t(_meta(node, "ann2snn_reset_amount"))
                else:
                    v = torch.where(z > 0, t(node.v_reset).expand_as(v), v)
                state[name] = v
                y = z
            else:
                raise AssertionError(f"reference interpreter does not know {type(node).__name__}")
            val[name] = y
        outs.append(val["output"])
    return torch.stack(outs)


def _roundtrip(snn, shape, tmp_path, **kw):
    path = tmp_path / "model.nir"
    export_nir(snn, path, shape, **kw)
    return nir.read(path)


# ------------------------------------------------------------------------------------------------ models
class SmallCNN(nn.Module):
    def __init__(self, pool: str = "avg") -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 4, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(4)
        self.act1 = nn.ReLU()
        self.pool = nn.AvgPool2d(2) if pool == "avg" else nn.MaxPool2d(2)
        self.conv2 = nn.Conv2d(4, 6, 3, stride=2, padding=1)
        self.act2 = nn.ReLU()
        self.flat = nn.Flatten()
        self.fc1 = nn.Linear(6 * 2 * 2, 12)
        self.act3 = nn.ReLU()
        self.fc2 = nn.Linear(12, 3)

    def forward(self, x):
        x = self.pool(self.act1(self.bn1(self.conv1(x))))
        x = self.flat(self.act2(self.conv2(x)))
        return self.fc2(self.act3(self.fc1(x)))


class ResBlock(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(1, 4, 3, padding=1)
        self.a = nn.ReLU()
        self.conv = nn.Conv2d(4, 4, 3, padding=1)
        self.b = nn.ReLU()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(4, 3)

    def forward(self, x):
        x = self.a(self.stem(x))
        x = self.b(self.conv(x) + x)
        return self.fc(torch.flatten(self.pool(x), 1))


def _qann(model, seed, levels=4):
    torch.manual_seed(seed)
    q = a2s.prepare(model, a2s.QuantConfig(levels=levels, threshold=1.0))
    for m in q.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.2, 0.2)
            m.running_var.uniform_(0.5, 1.5)
        if hasattr(m, "threshold"):
            m.threshold.data.uniform_(0.5, 2.0)
    return q.double().eval()


SERIAL_IF = a2s.ConversionConfig(method="serial", timesteps=6)
SERIAL_LIF = a2s.ConversionConfig(method="serial", timesteps=6, neuron="lif", leak=0.75)


# ------------------------------------------------------------------------------------------------- tests
@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000))
def test_if_cnn_round_trip_is_exact(seed, tmp_path_factory):
    torch.manual_seed(seed)
    snn = a2s.convert(_qann(SmallCNN(), seed), SERIAL_IF)
    x = torch.rand(5, 1, 8, 8, dtype=torch.float64)
    graph = _roundtrip(snn, (1, 8, 8), tmp_path_factory.mktemp("nir"), extensions=True)
    ref = a2s.simulate(snn, x, 6).outputs
    assert torch.equal(run_nir(graph, x, 6), ref)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000))
def test_lif_cnn_round_trip_matches(seed, tmp_path_factory):
    # LIF: NIR's Euler form v + ((0 - v) + tau*I)/tau equals 0.75*v + I only up to float64 round-off, which can
    # flip a spike at a threshold tie; with random float64 inputs a flip has probability ~1e-13 per neuron-step.
    torch.manual_seed(seed)
    snn = a2s.convert(_qann(SmallCNN(), seed), SERIAL_LIF)
    x = torch.rand(5, 1, 8, 8, dtype=torch.float64)
    graph = _roundtrip(snn, (1, 8, 8), tmp_path_factory.mktemp("nir"), extensions=True)
    assert isinstance(graph.nodes["act1"], nir.LIF)
    torch.testing.assert_close(run_nir(graph, x, 6), a2s.simulate(snn, x, 6).outputs, rtol=0, atol=1e-9)


def test_standard_nir_without_extensions_is_exact(tmp_path):
    cfg = a2s.ConversionConfig(method="serial", timesteps=5, reset="zero", v_init=0.0)
    snn = a2s.convert(_qann(SmallCNN(), 3), cfg)
    graph = _roundtrip(snn, (1, 8, 8), tmp_path)
    assert graph.metadata["ann2snn_extensions"] in ("", b"")
    assert all(not any(str(k).startswith("ann2snn_reset") for k in n.metadata) for n in graph.nodes.values())
    x = torch.rand(7, 1, 8, 8, dtype=torch.float64)
    assert torch.equal(run_nir(graph, x, 5), a2s.simulate(snn, x, 5).outputs)


def test_residual_add_becomes_two_edges_and_matches(tmp_path):
    snn = a2s.convert(_qann(ResBlock(), 1), SERIAL_IF)
    graph = _roundtrip(snn, (1, 6, 6), tmp_path, extensions=True)
    into_b = [s for s, d in graph.edges if d == "b"]
    assert len(into_b) == 2
    x = torch.rand(4, 1, 6, 6, dtype=torch.float64)
    assert torch.equal(run_nir(graph, x, 6), a2s.simulate(snn, x, 6).outputs)


def test_amplitude_folding_is_exact_and_scale_kept_otherwise(tmp_path):
    snn = a2s.convert(_qann(SmallCNN(), 5), SERIAL_IF)
    folded = to_nir(snn, (1, 8, 8), extensions=True)
    unfolded = to_nir(snn, (1, 8, 8), extensions=True, fold_amplitude=False)
    # act2 -> flatten -> fc1 and act1 -> avgpool keep their Scale; act3 -> fc2 is folded.
    assert "act3_amplitude" not in folded.nodes and "act3_amplitude" in unfolded.nodes
    assert "act1_amplitude" in folded.nodes
    x = torch.rand(3, 1, 8, 8, dtype=torch.float64)
    assert torch.equal(run_nir(folded, x, 6), run_nir(unfolded, x, 6))


def test_without_extensions_subtract_reset_is_refused():
    snn = a2s.convert(_qann(SmallCNN(), 0), SERIAL_IF)
    with pytest.raises(ExportError, match="reset by subtraction.*extensions=True"):
        to_nir(snn, (1, 8, 8))


@pytest.mark.parametrize(
    ("fields", "neuron"),
    [
        ({"method": "srp", "presteps": 2}, "SRPNeuron"),
        ({"method": "cos", "presteps": 2}, "COSNeuron"),
        ({"method": "serial", "calibration": "li_bias"}, "CalibratedIFNeuron"),
    ],
)
def test_if_neuron_variants_are_refused_not_exported_as_plain_if(fields, neuron):
    """SRP/COS pre-simulation and Li-calibrated neurons subclass IF but behave differently: no silent IF export."""
    qann = _qann(SmallCNN(), 0)
    data = [torch.rand(4, 1, 8, 8)]
    snn = a2s.convert(qann, a2s.ConversionConfig(timesteps=4, **fields), calibration_data=data)
    with pytest.raises(ExportError, match=f"{neuron}.*no NIR mapping"):
        to_nir(snn, (1, 8, 8), extensions=True)


def test_interpreter_sanity_negative(tmp_path):
    # Ignoring the extension metadata (what a plain NIR tool does) must give a different network.
    snn = a2s.convert(_qann(SmallCNN(), 2), SERIAL_IF)
    graph = _roundtrip(snn, (1, 8, 8), tmp_path, extensions=True)
    for node in graph.nodes.values():
        node.metadata = {}
    x = torch.rand(8, 1, 8, 8, dtype=torch.float64)
    assert not torch.equal(run_nir(graph, x, 6), a2s.simulate(snn, x, 6).outputs)


def test_maxpool_is_refused():
    snn = a2s.convert(_qann(SmallCNN("max"), 0), SERIAL_IF)
    with pytest.raises(ExportError, match="max-pool has no NIR node"):
        to_nir(snn, (1, 8, 8), extensions=True)


def test_parallel_multilayer_is_refused_single_layer_exported(tmp_path):
    snn = a2s.convert(_qann(SmallCNN(), 0), a2s.ConversionConfig(method="parallel", timesteps=4))
    with pytest.raises(ExportError, match="parallel neuron .*method='serial'"):
        to_nir(snn, (1, 8, 8), extensions=True)
    mlp = _qann(nn.Sequential(nn.Linear(5, 7), nn.ReLU(), nn.Linear(7, 2)), 0)
    psnn = a2s.convert(mlp, a2s.ConversionConfig(method="parallel", timesteps=4))
    graph = _roundtrip(psnn, None, tmp_path, extensions=True)
    x = torch.rand(16, 5, dtype=torch.float64)
    mean = run_nir(graph, x, 4).mean(0)
    torch.testing.assert_close(mean, a2s.simulate(psnn, x, 4).mean_output, rtol=0, atol=1e-12)


def test_conv_net_needs_input_shape_and_write_is_atomic(tmp_path):
    snn = a2s.convert(_qann(SmallCNN(), 0), SERIAL_IF)
    with pytest.raises(ExportError, match="input_shape"):
        export_nir(snn, tmp_path / "m.nir", extensions=True)
    assert list(tmp_path.iterdir()) == []
