"""NIR export: write, read back with nir.read, simulate with a reference interpreter, compare with ann2snn.

Float round-off: the NIR forms compute the same real-valued network in another operation order (the soft-reset
integrator holds u − v(0), folded weights hold w·θ), so per-step outputs agree to round-off (asserted: 1e-12 in
float64 for IF, 1e-9 for LIF's Euler form) unless a potential lies within round-off of a threshold, which for random
float64 inputs has probability ~1e-13 per neuron-step.
"""

from __future__ import annotations

import pytest
import torch
from _nir_reference import GroupedCNN, ResBlock, SmallCNN, qann, run_nir
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

import ann2snn as a2s
from ann2snn.errors import ExportError
from ann2snn.export.nir import export_nir, to_nir

nir = pytest.importorskip("nir")

SERIAL_IF = a2s.ConversionConfig(method="serial", timesteps=6)  # the default: reset by subtraction, v(0) = θ/2
SERIAL_LIF = a2s.ConversionConfig(method="serial", timesteps=6, neuron="lif", leak=0.75)
STRICT_IF = a2s.ConversionConfig(method="serial", timesteps=5, reset="zero", v_init=0.0)


def _roundtrip(snn, shape, tmp_path, **kw):
    path = tmp_path / "model.nir"
    export_nir(snn, path, shape, **kw)
    return nir.read(path)


def _close(a, b, atol=1e-12):
    torch.testing.assert_close(a, b, rtol=0, atol=atol)


def _standard(graph):
    """No ann2snn metadata on any node and no extension listed: what every NIR tool reads the same way."""
    assert graph.metadata["ann2snn_extensions"] in ("", b"")
    return all(not n.metadata for n in graph.nodes.values())


# ------------------------------------------------------------------------------------------------- tests
@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 10_000))
def test_default_soft_reset_cnn_is_standard_nir_and_exact(seed, tmp_path_factory):
    snn = a2s.convert(qann(SmallCNN(), seed), SERIAL_IF)
    graph = _roundtrip(snn, (1, 8, 8), tmp_path_factory.mktemp("nir"))
    assert _standard(graph)
    assert isinstance(graph.nodes["act1_v"], nir.I) and isinstance(graph.nodes["act1"], nir.Threshold)
    assert ("act1", "act1_reset") in graph.edges and ("act1_reset", "act1_v") in graph.edges
    torch.manual_seed(seed)
    x = torch.rand(5, 1, 8, 8, dtype=torch.float64)
    _close(run_nir(graph, x, 6), a2s.simulate(snn, x, 6).outputs)


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 10_000))
def test_lif_soft_reset_is_a_leaky_integrator_and_matches(seed, tmp_path_factory):
    snn = a2s.convert(qann(SmallCNN(), seed), SERIAL_LIF)
    graph = _roundtrip(snn, (1, 8, 8), tmp_path_factory.mktemp("nir"))
    assert _standard(graph) and isinstance(graph.nodes["act1_v"], nir.LI)
    torch.manual_seed(seed)
    x = torch.rand(5, 1, 8, 8, dtype=torch.float64)
    _close(run_nir(graph, x, 6), a2s.simulate(snn, x, 6).outputs, atol=1e-9)


@pytest.mark.parametrize("neuron", ["if", "lif"])
def test_reset_to_zero_exports_plain_if_lif(neuron, tmp_path):
    cfg = a2s.ConversionConfig(method="serial", timesteps=5, reset="zero", v_init=0.0, neuron=neuron, leak=0.8)
    snn = a2s.convert(qann(SmallCNN(), 3), cfg)
    graph = _roundtrip(snn, (1, 8, 8), tmp_path)
    assert _standard(graph) and isinstance(graph.nodes["act1"], nir.IF if neuron == "if" else nir.LIF)
    x = torch.rand(7, 1, 8, 8, dtype=torch.float64)
    _close(run_nir(graph, x, 5), a2s.simulate(snn, x, 5).outputs, atol=0 if neuron == "if" else 1e-9)


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 10_000), per_channel=st.booleans())
def test_amplitudes_fold_through_pool_and_flatten_without_scale_nodes(seed, per_channel, tmp_path_factory):
    snn = a2s.convert(qann(SmallCNN(), seed), SERIAL_IF)
    if per_channel:  # per-channel thresholds (one per conv channel) fold as well
        gen = torch.Generator().manual_seed(seed)
        snn.net.act1.threshold = 0.5 + torch.rand(4, 1, 1, generator=gen, dtype=torch.float64)
        snn.net.act2.threshold = 0.5 + torch.rand(6, 1, 1, generator=gen, dtype=torch.float64)
    folded = to_nir(snn, (1, 8, 8))
    unfolded = to_nir(snn, (1, 8, 8), fold_amplitude=False)
    assert not any(isinstance(n, nir.Scale) for n in folded.nodes.values())
    assert {"act1_amplitude", "act2_amplitude", "act3_amplitude"} <= set(unfolded.nodes)
    x = torch.rand(3, 1, 8, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(seed))
    ref = a2s.simulate(snn, x, 6).outputs
    _close(run_nir(folded, x, 6), ref)
    _close(run_nir(unfolded, x, 6), ref)


def test_scale_stays_where_spikes_reach_a_neuron_directly(tmp_path):
    snn = a2s.convert(qann(ResBlock(), 1), SERIAL_IF)
    graph = _roundtrip(snn, (1, 6, 6), tmp_path)
    # a's spikes feed conv (foldable) and the add into b's integrator (not foldable): one Scale, used by both.
    assert isinstance(graph.nodes["a_amplitude"], nir.Scale)
    assert sorted(s for s, d in graph.edges if d == "b_v") == ["a_amplitude", "b_reset", "conv"]
    assert "b_amplitude" not in graph.nodes  # b -> avgpool -> flatten -> fc folds
    x = torch.rand(4, 1, 6, 6, dtype=torch.float64)
    _close(run_nir(graph, x, 6), a2s.simulate(snn, x, 6).outputs)


def test_grouped_conv_is_exported_as_dense_conv(tmp_path):
    snn = a2s.convert(qann(GroupedCNN(), 0), SERIAL_IF)
    graph = _roundtrip(snn, (1, 6, 6), tmp_path)
    assert int(graph.nodes["conv2"].groups) == 1 and graph.nodes["conv2"].weight.shape == (6, 4, 3, 3)
    assert "written as a dense conv" in str(graph.metadata["ann2snn_notes"])
    x = torch.rand(4, 1, 6, 6, dtype=torch.float64)
    _close(run_nir(graph, x, 6), a2s.simulate(snn, x, 6).outputs)


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
    data = [torch.rand(4, 1, 8, 8)]
    snn = a2s.convert(qann(SmallCNN(), 0), a2s.ConversionConfig(timesteps=4, **fields), calibration_data=data)
    with pytest.raises(ExportError, match=f"{neuron}.*no NIR mapping"):
        to_nir(snn, (1, 8, 8), extensions=True)


def test_zero_reset_with_initial_potential_needs_extensions_and_interpreter_sees_them(tmp_path):
    cfg = a2s.ConversionConfig(method="serial", timesteps=6, reset="zero", v_init=0.5)
    snn = a2s.convert(qann(SmallCNN(), 2), cfg)
    graph = _roundtrip(snn, (1, 8, 8), tmp_path, extensions=True)
    assert str(graph.metadata["ann2snn_extensions"]) == "act1,act2,act3"
    x = torch.rand(8, 1, 8, 8, dtype=torch.float64)
    ref = a2s.simulate(snn, x, 6).outputs
    _close(run_nir(graph, x, 6), ref, atol=0)
    for node in graph.nodes.values():  # what a NIR tool that ignores the metadata computes: another network
        node.metadata = {}
    assert not torch.equal(run_nir(graph, x, 6), ref)


def test_maxpool_is_refused():
    snn = a2s.convert(qann(SmallCNN("max"), 0), SERIAL_IF)
    with pytest.raises(ExportError, match="max-pool has no NIR node"):
        to_nir(snn, (1, 8, 8))


def test_parallel_single_layer_exports_as_standard_serial_equivalent(tmp_path):
    mlp = qann(nn.Sequential(nn.Linear(5, 7), nn.ReLU(), nn.Linear(7, 2)), 0)
    psnn = a2s.convert(mlp, a2s.ConversionConfig(method="parallel", timesteps=4))
    graph = _roundtrip(psnn, None, tmp_path)
    assert _standard(graph)
    x = torch.rand(16, 5, dtype=torch.float64)
    _close(run_nir(graph, x, 4).mean(0), a2s.simulate(psnn, x, 4).mean_output)


def test_strict_export_has_plain_if_nodes_only(tmp_path):
    snn = a2s.convert(qann(SmallCNN(), 3), STRICT_IF)
    kinds = {type(n).__name__ for n in to_nir(snn, (1, 8, 8)).nodes.values()}
    assert kinds == {"Input", "Output", "Conv2d", "AvgPool2d", "Flatten", "Affine", "IF"}
