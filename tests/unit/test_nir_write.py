"""NIR export: the time step, the file write (atomic, full disk) and refusals whose advice works (API and CLI)."""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
import uuid

import numpy as np
import pytest
import torch
from _nir_reference import SmallCNN, qann, run_nir
from torch import nn
from typer.testing import CliRunner

import ann2snn as a2s
from ann2snn.errors import ExportError
from ann2snn.export.nir import export_nir, nir_bytes, to_nir
from ann2snn.export.nir_neurons import NIRRefusal

nir = pytest.importorskip("nir")


def _snn(**fields):
    return a2s.convert(qann(SmallCNN(), 0), a2s.ConversionConfig(method="serial", timesteps=6, **fields))


# ------------------------------------------------------------------------------------------------ time step
@pytest.mark.parametrize("dt", [1.0, 1e-3, 1e-4])
@pytest.mark.parametrize("neuron", ["if", "lif"])
def test_dt_round_trip_writes_r_and_tau_for_the_step(dt, neuron, tmp_path):
    snn = _snn(neuron=neuron, leak=0.8)
    path = tmp_path / "m.nir"
    export_nir(snn, path, (1, 8, 8), dt=dt)
    graph = nir.read(path)
    assert float(np.asarray(graph.metadata["ann2snn_dt"])) == dt
    integ = graph.nodes["act1_v"]
    if neuron == "if":
        np.testing.assert_allclose(integ.r, 1 / dt, rtol=1e-15)
    else:  # forward Euler with step dt: λ = 1 − dt/τ, input weight dt·r/τ = 1
        np.testing.assert_allclose(1 - dt / integ.tau, 0.8, rtol=1e-12)
        np.testing.assert_allclose(dt * integ.r / integ.tau, 1.0, rtol=1e-12)
    x = torch.rand(4, 1, 8, 8, dtype=torch.float64)
    torch.testing.assert_close(run_nir(graph, x, 6), a2s.simulate(snn, x, 6).outputs, rtol=0, atol=1e-9)


def test_bad_dt_is_refused():
    with pytest.raises(ExportError, match="dt must be a positive number"):
        to_nir(_snn(), (1, 8, 8), dt=0.0)


# ------------------------------------------------------------------------------------------------ writing
def test_write_is_atomic_and_matches_in_memory_bytes(tmp_path):
    snn = _snn()
    with pytest.raises(ExportError, match="input_shape"):
        export_nir(snn, tmp_path / "m.nir")
    assert list(tmp_path.iterdir()) == []
    graph = export_nir(snn, tmp_path / "m.nir", (1, 8, 8))
    assert [p.name for p in tmp_path.iterdir()] == ["m.nir"]
    assert nir.read(tmp_path / "m.nir").edges == graph.edges
    assert len(nir_bytes(graph)) == (tmp_path / "m.nir").stat().st_size


def test_full_disk_is_an_export_error_and_leaves_old_file_and_no_temp(tmp_path, monkeypatch):
    import ann2snn.io

    target = tmp_path / "m.nir"
    target.write_bytes(b"old")

    def no_space(path):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(ann2snn.io, "_fsync_file", no_space)
    with pytest.raises(ExportError, match=r"no space to write .*m\.nir \([\d,]+ bytes needed, [\d,]+ bytes free"):
        export_nir(_snn(), target, (1, 8, 8))
    assert [p.name for p in tmp_path.iterdir()] == ["m.nir"] and target.read_bytes() == b"old"


@pytest.fixture
def tiny_tmpfs(tmp_path):
    """A 256 KiB tmpfs (root only; skipped where mounting is not permitted)."""
    mnt = tmp_path / f"tmpfs-{uuid.uuid4().hex[:6]}"
    mnt.mkdir()
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a tmpfs needs root")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mnt)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", str(mnt)], check=False)


def test_real_full_disk_is_an_export_error(tiny_tmpfs):
    snn = _snn()
    size = len(nir_bytes(to_nir(snn, (1, 8, 8))))
    free = shutil.disk_usage(tiny_tmpfs).free
    (tiny_tmpfs / "filler").write_bytes(b"\0" * (free - size // 2))
    with pytest.raises(ExportError, match="no space to write"):
        export_nir(snn, tiny_tmpfs / "m.nir", (1, 8, 8))
    assert [p.name for p in tiny_tmpfs.iterdir()] == ["filler"]


# ------------------------------------------------------------------------------------------------ refusals
def test_refusal_advice_works_in_the_api():
    snn = _snn(reset="zero", v_init=0.5)
    with pytest.raises(NIRRefusal) as info:
        to_nir(snn, (1, 8, 8))
    msg = str(info.value)
    assert "ConversionConfig(reset='subtract')" in msg and "ConversionConfig(reset='zero', v_init=0.0" in msg
    assert "--reset" in info.value.cli_message and "ConversionConfig" not in info.value.cli_message
    for advice in ({"reset": "subtract"}, {"reset": "zero", "v_init": 0.0}):  # each advised config exports
        assert not to_nir(_snn(**advice), (1, 8, 8)).metadata["ann2snn_extensions"]


def test_parallel_refusal_advice_works():
    psnn = a2s.convert(qann(SmallCNN(), 0), a2s.ConversionConfig(method="parallel", timesteps=4))
    with pytest.raises(NIRRefusal, match="method='serial'") as info:
        to_nir(psnn, (1, 8, 8))
    assert "--method serial" in info.value.cli_message
    serial = a2s.convert(qann(SmallCNN(), 0), a2s.ConversionConfig(method="serial", timesteps=4))
    assert not to_nir(serial, (1, 8, 8)).metadata["ann2snn_extensions"]


@pytest.fixture
def checkpoint(tmp_path):
    torch.manual_seed(0)
    model = a2s.prepare(
        a2s.create_model("cnn", num_classes=10, in_channels=1, image_size=8, seed=0), a2s.QuantConfig(levels=4)
    )
    return a2s.save_checkpoint(
        tmp_path / "ckpt",
        model,
        model_name="cnn",
        model_kwargs={"num_classes": 10, "in_channels": 1, "image_size": 8},
        quant=a2s.QuantConfig(levels=4),
        dataset="digits",
    )


def test_cli_prints_its_own_flags_and_writes_dt(checkpoint, tmp_path):
    from ann2snn.cli import app

    runner = CliRunner()
    base = ["export", "-c", str(checkpoint), "-o", str(tmp_path / "m.nir"), "-T", "4"]
    bad = runner.invoke(app, [*base, "--reset", "zero", "--v-init", "0.5"])
    assert bad.exit_code == 2, bad.output
    assert "--reset zero --v-init 0" in bad.stderr and "ConversionConfig" not in bad.stderr
    ok = runner.invoke(app, [*base, "--dt", "0.001"])
    assert ok.exit_code == 0, ok.output
    graph = nir.read(tmp_path / "m.nir")
    assert float(np.asarray(graph.metadata["ann2snn_dt"])) == 0.001 and not graph.metadata["ann2snn_extensions"]
    assert not any(isinstance(n, nir.Scale) for n in graph.nodes.values())


def test_linear_model_needs_no_shape():
    mlp = qann(nn.Sequential(nn.Linear(5, 7), nn.ReLU(), nn.Linear(7, 2)), 0)
    graph = to_nir(a2s.convert(mlp, a2s.ConversionConfig(method="serial", timesteps=4)))
    assert isinstance(graph.nodes["_1_reset"], nir.Affine) and graph.nodes["_1_reset"].weight.shape == (7, 7)


def test_per_channel_thresholds_of_if_nodes_are_noted(caplog):
    snn = _snn(reset="zero", v_init=0.0)
    snn.net.act1.threshold = 0.5 + torch.rand(4, 1, 1, dtype=torch.float64)
    with caplog.at_level("WARNING", logger="ann2snn"):
        graph = to_nir(snn, (1, 8, 8))
    assert "'act1' has per-channel thresholds" in str(graph.metadata["ann2snn_notes"])
    assert "snnTorch and SpikingJelly" in caplog.text
