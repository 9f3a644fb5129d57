"""Saved SNN folders: written atomically, loaded back bit-exactly for every conversion path."""

from __future__ import annotations

import json

import pytest
import torch

import ann2snn as a2s
from ann2snn.errors import CheckpointError, ConfigError
from ann2snn.export.checkpoint import load_checkpoint, save_checkpoint
from ann2snn.export.snn_file import is_saved_snn, load_snn, save_snn
from ann2snn.models import create_model


def _batches(seed: int = 0, n: int = 3) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return [torch.rand(16, 1, 8, 8, generator=g) for _ in range(n)]


def _ann(tmp_path, quant: a2s.QuantConfig | None):
    net = create_model("cnn", num_classes=3, in_channels=1, image_size=8, hidden=16, seed=1)
    if quant is not None:
        net = a2s.prepare(net, quant)
    with torch.no_grad():  # non-trivial BN statistics so folding matters
        for m in net.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.1, 0.1)
                m.running_var.uniform_(0.5, 1.5)
    stem = save_checkpoint(tmp_path / "ann", net, quant=quant, dataset="digits")
    return load_checkpoint(stem)


CASES = {
    "parallel+da": (None, a2s.ConversionConfig(method="parallel", timesteps=4, per_channel=True, calibration="da")),
    "parallel-qcfs": (a2s.QuantConfig(levels=4), a2s.ConversionConfig(method="parallel", timesteps=2)),
    "serial": (None, a2s.ConversionConfig(method="serial", timesteps=6)),
    "serial+li": (None, a2s.ConversionConfig(method="serial", timesteps=4, calibration="li_potential")),
    "steprelu": (
        a2s.QuantConfig(activation="steprelu", step=0.25, steps=4),
        a2s.ConversionConfig(method="steprelu", timesteps=4),
    ),
    "srp": (a2s.QuantConfig(levels=4), a2s.ConversionConfig(method="srp", timesteps=3, presteps=2)),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_round_trip_is_bit_exact(tmp_path, case):
    quant, config = CASES[case]
    ckpt = _ann(tmp_path, quant)
    snn = a2s.convert(ckpt.model, config, calibration_data=_batches())
    folder = save_snn(tmp_path / "snn", snn, ckpt)
    assert is_saved_snn(folder)
    loaded = load_snn(folder)
    x = torch.rand(2, 5, 1, 8, 8, generator=torch.Generator().manual_seed(7))
    steps = snn.presteps + snn.timesteps
    x_seq = x[:1].expand(steps, *x.shape[1:])
    assert torch.equal(loaded.snn(x_seq), snn(x_seq))
    a = {k: v for k, v in snn.state_dict().items()}
    b = loaded.snn.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) and a[k].dtype == b[k].dtype for k in a)
    assert loaded.snn.log == snn.log and loaded.snn.sites == snn.sites and loaded.snn.config == snn.config
    assert torch.equal(loaded.ann.model(x[0]), ckpt.model(x[0]))
    meta = json.loads((folder / "snn.json").read_text())
    assert meta["source"]["sha256"] == ckpt.meta["weights"]["sha256"]
    assert all("threshold" in n for n in meta["neurons"].values())
    assert "Conversion report" in (folder / "report.md").read_text()


def test_da_offsets_are_summarised(tmp_path):
    quant, config = CASES["parallel+da"]
    ckpt = _ann(tmp_path, quant)
    snn = a2s.convert(ckpt.model, config, calibration_data=_batches())
    meta = json.loads((save_snn(tmp_path / "snn", snn, ckpt) / "snn.json").read_text())
    first = next(iter(meta["neurons"].values()))
    assert first["class"] == "ParallelIFNeuron" and {"threshold", "bias", "amplitude_correction"} <= set(first)
    bias = next(iter(snn.neurons().values())).bias
    assert first["bias"]["max"] == pytest.approx(bias.double().max().item())


def test_overwrite_replaces_old_snn_and_refuses_other_folders(tmp_path):
    ckpt = _ann(tmp_path, a2s.QuantConfig(levels=4))
    snn2 = a2s.convert(ckpt.model, a2s.ConversionConfig(timesteps=2))
    snn4 = a2s.convert(ckpt.model, a2s.ConversionConfig(timesteps=4))
    folder = save_snn(tmp_path / "snn", snn2, ckpt)
    save_snn(folder, snn4, ckpt)
    assert load_snn(folder).snn.timesteps == 4
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []
    other = tmp_path / "other"
    other.mkdir()
    (other / "keep.txt").write_text("x")
    with pytest.raises(ConfigError, match="not a saved SNN folder"):
        save_snn(other, snn4, ckpt)
    assert (other / "keep.txt").read_text() == "x"


def test_corrupt_or_tampered_files_are_refused(tmp_path):
    ckpt = _ann(tmp_path, a2s.QuantConfig(levels=4))
    folder = save_snn(tmp_path / "snn", a2s.convert(ckpt.model, a2s.ConversionConfig(timesteps=4)), ckpt)
    weights = folder / "snn.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 1
    weights.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="SHA-256"):
        load_snn(folder)
    with pytest.raises(CheckpointError, match="not a saved SNN"):
        load_snn(tmp_path)


def test_structure_change_is_detected(tmp_path):
    ckpt = _ann(tmp_path, a2s.QuantConfig(levels=4))
    folder = save_snn(tmp_path / "snn", a2s.convert(ckpt.model, a2s.ConversionConfig(timesteps=4)), ckpt)
    meta_path = folder / "snn.json"
    meta = json.loads(meta_path.read_text())
    meta["config"]["order"] = "back"  # a different neuron setting than the one saved
    meta_path.write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match="differs from the saved one"):
        load_snn(folder)
