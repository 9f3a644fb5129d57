"""Checkpoints: bitwise round trip, rebuild from metadata, and a CheckpointError naming the file for every fault."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
from torch import nn

from ann2snn.config import QuantConfig
from ann2snn.errors import CheckpointError
from ann2snn.export import checkpoint_exists, checkpoint_files, load_checkpoint, save_checkpoint


def tiny() -> nn.Module:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(1, 3, 3), nn.BatchNorm2d(3), nn.ReLU(), nn.Flatten(), nn.Linear(12, 4))
    net(torch.randn(5, 1, 4, 4))  # update BN running statistics
    return net


def assert_same_state(a: nn.Module, b: nn.Module) -> None:
    sa, sb = a.state_dict(), b.state_dict()
    assert list(sa) == list(sb)
    for key in sa:
        assert sa[key].dtype == sb[key].dtype and torch.equal(sa[key], sb[key]), key


def test_round_trip_is_bitwise_and_does_not_touch_inputs(tmp_path: Path) -> None:
    net = tiny()
    template = tiny()
    with torch.no_grad():
        template[0].weight.zero_()
    before = {k: v.clone() for k, v in template.state_dict().items()}
    stem = save_checkpoint(tmp_path / "ck", net, dataset="digits", metrics={"acc": 0.75, "t": torch.tensor(2.0)})
    assert stem == tmp_path / "ck" and checkpoint_exists(stem)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ck.json", "ck.safetensors"]
    ckpt = load_checkpoint(tmp_path / "ck.json", model=template)
    assert_same_state(ckpt.model, net)
    assert not ckpt.model.training
    assert all(torch.equal(v, before[k]) for k, v in template.state_dict().items())
    assert ckpt.meta["dataset"] == "digits" and ckpt.metrics == {"acc": 0.75, "t": 2.0}
    assert ckpt.quant is None and ckpt.training_state is None


def test_directory_path_and_suffix_forms(tmp_path: Path) -> None:
    assert checkpoint_files(tmp_path / "a.safetensors") == (tmp_path / "a.safetensors", tmp_path / "a.json")
    save_checkpoint(tmp_path, tiny())
    assert (tmp_path / "checkpoint.json").is_file()
    assert_same_state(load_checkpoint(tmp_path, model=tiny()).model, tiny())


def test_training_state_round_trip(tmp_path: Path) -> None:
    net = tiny()
    opt = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
    net(torch.randn(4, 1, 4, 4)).sum().backward()
    opt.step()
    state = {
        "optimizer": opt.state_dict(),
        "rng": torch.get_rng_state(),
        "epoch": 3,
        "history": [{"loss": float("nan"), "acc": None}],
        "nested": {1: (torch.arange(3), "x")},
    }
    save_checkpoint(tmp_path / "ck", net, training_state=state)
    ckpt = load_checkpoint(tmp_path / "ck", model=tiny())
    got = ckpt.training_state
    assert got is not None
    assert torch.equal(got["rng"], state["rng"]) and got["epoch"] == 3
    assert math.isnan(got["history"][0]["loss"]) and got["history"][0]["acc"] is None
    assert torch.equal(got["nested"][1][0], torch.arange(3)) and got["nested"][1][1] == "x"
    opt2 = torch.optim.SGD(ckpt.model.parameters(), lr=0.1, momentum=0.9)
    opt2.load_state_dict(got["optimizer"])
    for k, v in opt.state_dict()["state"].items():
        assert torch.equal(opt2.state_dict()["state"][k]["momentum_buffer"], v["momentum_buffer"])


def test_rebuilds_registered_prepared_model(tmp_path: Path) -> None:
    models = pytest.importorskip("ann2snn.models")
    from ann2snn.transforms.prepare import prepare

    quant = QuantConfig(activation="qcfs", levels=4)
    torch.manual_seed(0)
    net = prepare(models.create_model("cnn", num_classes=3, in_channels=1, image_size=8, hidden=8), quant)
    save_checkpoint(tmp_path / "q", net, quant=quant, dataset="digits")
    meta = json.loads((tmp_path / "q.json").read_text())
    assert meta["model"]["name"] == "cnn" and meta["model"]["kwargs"]["hidden"] == 8
    ckpt = load_checkpoint(tmp_path / "q")
    assert ckpt.quant == quant
    assert_same_state(ckpt.model, net)
    x = torch.rand(2, 1, 8, 8)
    assert torch.equal(ckpt.model(x), net.eval()(x))


def test_unnamed_architecture_needs_template(tmp_path: Path) -> None:
    save_checkpoint(tmp_path / "ck", tiny())
    with pytest.raises(CheckpointError, match=r"ck\.json.*model="):
        load_checkpoint(tmp_path / "ck")


def test_unsupported_values_are_rejected(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="extra"):
        save_checkpoint(tmp_path / "ck", tiny(), extra={"f": object()})
    with pytest.raises(CheckpointError, match="quant"):
        save_checkpoint(tmp_path / "ck", tiny(), quant={"levels": 0})
    assert not (tmp_path / "ck.json").exists()


@pytest.fixture
def saved(tmp_path: Path) -> Path:
    save_checkpoint(tmp_path / "ck", tiny())
    return tmp_path / "ck"


def _edit_json(stem: Path, edit) -> None:  # type: ignore[no-untyped-def]
    path = stem.with_name("ck.json")
    meta = json.loads(path.read_text())
    edit(meta)
    path.write_text(json.dumps(meta))


def test_truncated_weights(saved: Path) -> None:
    weights = saved.with_name("ck.safetensors")
    weights.write_bytes(weights.read_bytes()[:-10])
    with pytest.raises(CheckpointError, match=r"ck\.safetensors.*truncated"):
        load_checkpoint(saved, model=tiny())


def test_corrupt_weights(saved: Path) -> None:
    weights = saved.with_name("ck.safetensors")
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match=r"ck\.safetensors.*corrupt"):
        load_checkpoint(saved, model=tiny())


def test_unparsable_weights_with_matching_hash(saved: Path) -> None:
    import hashlib

    garbage = b"not a safetensors file at all"
    saved.with_name("ck.safetensors").write_bytes(garbage)
    _edit_json(saved, lambda m: m["weights"].update(sha256=hashlib.sha256(garbage).hexdigest(), size=len(garbage)))
    with pytest.raises(CheckpointError, match=r"ck\.safetensors.*safetensors"):
        load_checkpoint(saved, model=tiny())


def test_truncated_json(saved: Path) -> None:
    path = saved.with_name("ck.json")
    path.write_text(path.read_text()[:50])
    with pytest.raises(CheckpointError, match=r"ck\.json.*not valid JSON"):
        load_checkpoint(saved, model=tiny())


@pytest.mark.parametrize("key", ["weights", "model", "metrics", "quant"])
def test_missing_key(saved: Path, key: str) -> None:
    _edit_json(saved, lambda m: m.pop(key))
    with pytest.raises(CheckpointError, match=rf"ck\.json.*{key}"):
        load_checkpoint(saved, model=tiny())


def test_wrong_format_and_newer_version(saved: Path) -> None:
    _edit_json(saved, lambda m: m.update(format_version=99))
    with pytest.raises(CheckpointError, match=r"ck\.json.*newer"):
        load_checkpoint(saved, model=tiny())
    _edit_json(saved, lambda m: m.update(format="other"))
    with pytest.raises(CheckpointError, match=r"ck\.json.*format"):
        load_checkpoint(saved, model=tiny())


def test_shape_mismatch_names_file_and_tensor(saved: Path) -> None:
    other = nn.Sequential(nn.Conv2d(1, 3, 3), nn.BatchNorm2d(3), nn.ReLU(), nn.Flatten(), nn.Linear(12, 5))
    with pytest.raises(CheckpointError, match=r"ck\.safetensors.*4\.weight"):
        load_checkpoint(saved, model=other)
    with pytest.raises(CheckpointError, match=r"ck\.safetensors.*missing"):
        load_checkpoint(saved, model=nn.Sequential(*tiny(), nn.Linear(4, 2)))


def test_missing_files(saved: Path) -> None:
    saved.with_name("ck.json").unlink()
    with pytest.raises(CheckpointError, match=r"ck\.json.*incomplete"):
        load_checkpoint(saved, model=tiny())
    saved.with_name("ck.safetensors").unlink()
    with pytest.raises(CheckpointError, match="no checkpoint"):
        load_checkpoint(saved, model=tiny())


def test_missing_weights_file(saved: Path) -> None:
    saved.with_name("ck.safetensors").unlink()
    with pytest.raises(CheckpointError, match=r"ck\.safetensors.*missing"):
        load_checkpoint(saved, model=tiny())
