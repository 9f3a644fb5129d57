"""A corpus of bad inputs: each raises the right ann2snn error with a message naming the offending thing.

API cases assert the exception type and that the message contains the name of what is wrong (field, parameter,
file, shape, label). CLI cases assert exit code 2 and one line ``error: ...`` naming it, with no traceback.
"""

from __future__ import annotations

import io
import os
import pickle
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn
from typer.testing import CliRunner

import ann2snn as a2s
from ann2snn.cli import app
from ann2snn.errors import (
    Ann2SnnError,
    CalibrationError,
    CheckpointError,
    ConfigError,
    DatasetError,
    InputError,
    UnsupportedModelError,
)
from ann2snn.export.checkpoint import checkpoint_files
from ann2snn.safeload import UnsafePickleError, load_torch_weights, safe_pickle_load
from ann2snn.validation import check_finite_model, load_config

torch.set_num_threads(1)
SENTINEL = Path(os.environ.get("TMPDIR", "/tmp")) / "ann2snn-pickle-ran-code"


class _Evil:
    """Unpickling this would create SENTINEL (i.e. run code)."""

    def __reduce__(self) -> tuple[Any, ...]:
        return (os.system, (f"touch {SENTINEL}",))


def _cnn() -> nn.Module:
    torch.manual_seed(0)
    return a2s.create_model("cnn", num_classes=10, in_channels=1, image_size=8)


def _qann() -> nn.Module:
    return a2s.prepare(_cnn(), a2s.QuantConfig(levels=4))


def _snn(method: str = "parallel") -> a2s.SpikingModel:
    return a2s.convert(_qann(), a2s.ConversionConfig(method=method, timesteps=4))


def _x(*shape: int) -> torch.Tensor:
    return torch.rand(*(shape or (2, 1, 8, 8)))


def _labels(*values: Any) -> torch.Tensor:
    return torch.tensor(values)


def _nan_weight_model() -> nn.Module:
    model = _qann()
    with torch.no_grad():
        model.get_parameter("features.1.0.weight")[0, 0, 0, 0] = float("nan")
    return model


def _nan_buffer_model() -> nn.Module:
    model = nn.BatchNorm1d(2)
    model.running_mean.fill_(float("nan"))
    return model


def _train(data: tuple[torch.Tensor, torch.Tensor]) -> Any:
    return a2s.train(nn.Linear(4, 3), data, a2s.TrainConfig(epochs=1, batch_size=4), progress=False)


def _saved(tmp: Path, model: nn.Module | None = None) -> Path:
    return a2s.save_checkpoint(tmp / "ck", model or _qann(), quant=a2s.QuantConfig(levels=4), dataset="digits")


def _truncate_weights(tmp: Path) -> Path:
    stem = _saved(tmp)
    weights = checkpoint_files(stem)[0]
    weights.write_bytes(weights.read_bytes()[:-100])
    return stem


def _corrupt_json(tmp: Path) -> Path:
    stem = _saved(tmp)
    json_path = checkpoint_files(stem)[1]
    json_path.write_text(json_path.read_text()[:50])
    return stem


def _edit_json(tmp: Path, old: str, new: str) -> Path:
    stem = _saved(tmp)
    json_path = checkpoint_files(stem)[1]
    text = json_path.read_text()
    assert old in text
    json_path.write_text(text.replace(old, new, 1))
    return stem


def _evil_pt(tmp: Path) -> Path:
    path = tmp / "weights.pt"
    path.write_bytes(pickle.dumps({"weight": _Evil()}, protocol=2))
    return path


def _evil_cifar(tmp: Path) -> Path:
    folder = tmp / "cifar-10-batches-py"
    folder.mkdir()
    for name in ("test_batch", *(f"data_batch_{i}" for i in range(1, 6))):
        (folder / name).write_bytes(pickle.dumps({b"data": _Evil(), b"labels": [0]}, protocol=2))
    return tmp


# (case id, call(tmp_path), exception type, substrings the message must contain)
API_CASES: list[tuple[str, Callable[[Path], Any], type[Exception], tuple[str, ...]]] = [
    ("levels<=0", lambda t: a2s.QuantConfig(levels=0), ConfigError, ("levels=0",)),
    ("threshold nan", lambda t: a2s.QuantConfig(threshold=float("nan")), ConfigError, ("threshold",)),
    ("T<=0", lambda t: a2s.ConversionConfig(timesteps=-1), ConfigError, ("timesteps=-1",)),
    ("leak>1", lambda t: a2s.ConversionConfig(leak=1.5), ConfigError, ("leak=1.5",)),
    ("leak=0", lambda t: a2s.ConversionConfig(leak=0.0), ConfigError, ("leak=0.0",)),
    ("unknown method", lambda t: a2s.ConversionConfig(method="magic"), ConfigError, ("method", "magic", "parallel")),
    ("bool field", lambda t: a2s.ConversionConfig(per_channel="yes"), ConfigError, ("per_channel",)),
    ("unknown field", lambda t: a2s.ConversionConfig.from_dict({"timestep": 8}), ConfigError, ("timestep",)),
    ("wrong kind", lambda t: a2s.ConversionConfig.from_dict({"kind": "QuantConfig"}), ConfigError, ("QuantConfig",)),
    ("non-str key", lambda t: a2s.QuantConfig.from_dict({1: 2}), ConfigError, ("1",)),
    (
        "config json",
        lambda t: (t / "c.json").write_text("{levels: 4") and load_config(t / "c.json", a2s.QuantConfig),
        ConfigError,
        ("c.json", "JSON"),
    ),
    (
        "config json field",
        lambda t: (t / "c.json").write_text('{"levels": -2}') and load_config(t / "c.json", a2s.QuantConfig),
        ConfigError,
        ("c.json", "levels=-2"),
    ),
    ("train lr", lambda t: a2s.TrainConfig(lr=-1.0), ConfigError, ("lr=-1.0",)),
    (
        "unsupported layer",
        lambda t: a2s.prepare(nn.Sequential(nn.Linear(3, 3), nn.GELU())),
        UnsupportedModelError,
        ("GELU", "'1'"),
    ),
    (
        "unsupported op",
        lambda t: a2s.convert(nn.Sequential(nn.Linear(3, 3), nn.ReLU(), nn.Sigmoid()), calibration_data=[_x(2, 3)]),
        UnsupportedModelError,
        ("Sigmoid",),
    ),
    ("not a module", lambda t: a2s.convert("model.pt"), UnsupportedModelError, ("str",)),
    ("relu without calibration", lambda t: a2s.convert(_cnn()), ConfigError, ("features.0.2", "calibration_data")),
    ("empty calibration", lambda t: a2s.convert(_cnn(), calibration_data=[]), CalibrationError, ("calibration_data",)),
    (
        "calibration shape",
        lambda t: a2s.convert(_cnn(), calibration_data=[_x(2, 3, 8, 8)]),
        InputError,
        ("calibration batch 0", "(2, 3, 8, 8)"),
    ),
    (
        "Li calibration shape",
        lambda t: a2s.convert(
            _qann(),
            a2s.ConversionConfig(method="serial", timesteps=2, calibration="li_bias"),
            calibration_data=[torch.tensor(2.9)],
        ),
        InputError,
        ("calibration batch 0", "()"),
    ),
    (
        "DA calibration shape",
        lambda t: a2s.convert(
            _qann(),
            a2s.ConversionConfig(method="parallel", timesteps=2, calibration="da"),
            calibration_data=[_x(2, 3, 8, 8)],
        ),
        InputError,
        ("calibration batch 0", "(2, 3, 8, 8)"),
    ),
    ("NaN weights", lambda t: a2s.convert(_nan_weight_model()), InputError, ("features.1.0.weight", "NaN")),
    ("int input", lambda t: a2s.simulate(_snn(), torch.ones(2, 1, 8, 8, dtype=torch.long)), InputError, ("int64",)),
    ("NaN input", lambda t: a2s.simulate(_snn(), torch.full((2, 1, 8, 8), float("inf"))), InputError, ("NaN or Inf",)),
    ("input shape", lambda t: a2s.simulate(_snn(), _x(2, 3, 8, 8)), InputError, ("(2, 3, 8, 8)",)),
    ("no batch dim", lambda t: a2s.simulate(_snn(), _x(8)), InputError, ("(8,)",)),
    ("simulate T=0", lambda t: a2s.simulate(_snn(), _x(), 0), ConfigError, ("timesteps=0",)),
    ("rate on serial", lambda t: a2s.simulate(_snn("serial"), _x(), mode="rate"), ConfigError, ("serial", "spike")),
    ("simulate an ANN", lambda t: a2s.simulate(_qann(), _x()), ConfigError, ("ann2snn.convert", "CNN")),
    (
        "float labels",
        lambda t: a2s.evaluate(_qann(), _snn(), [(_x(), _labels(0.0, 1.0))], (4,)),
        InputError,
        ("batch 0 labels", "float32"),
    ),
    ("evaluate T", lambda t: a2s.evaluate(_qann(), _snn(), [(_x(), _labels(0, 1))], (0,)), ConfigError, ("timesteps",)),
    (
        "evaluate shape",
        lambda t: a2s.evaluate(_qann(), _snn(), [(_x(2, 3, 8, 8), _labels(0, 1))], (4,)),
        InputError,
        ("batch 0 inputs", "(2, 3, 8, 8)"),
    ),
    ("empty evaluation", lambda t: a2s.evaluate(_qann(), _snn(), [], (4,)), InputError, ("no samples",)),
    ("label out of range", lambda t: _train((torch.randn(8, 4), torch.full((8,), 7))), InputError, ("7", "0..2")),
    ("train input shape", lambda t: _train((torch.randn(8, 5), torch.zeros(8).long())), InputError, ("(4, 5)",)),
    ("empty train data", lambda t: _train((torch.randn(0, 4), torch.zeros(0).long())), InputError, ("train_data",)),
    ("unknown model", lambda t: a2s.create_model("resnet99"), ConfigError, ("resnet99", "resnet20")),
    ("model option", lambda t: a2s.create_model("cnn", widht=2), ConfigError, ("widht",)),
    ("unknown dataset", lambda t: a2s.load_dataset("mnist"), ConfigError, ("mnist", "fashion_mnist")),
    ("unknown split", lambda t: a2s.load_dataset("digits", "validation"), ConfigError, ("validation",)),
    (
        "missing dataset files",
        lambda t: a2s.load_dataset("fashion_mnist", data_dir=t),
        DatasetError,
        ("train-images-idx3-ubyte", "apt-get install"),
    ),
    ("missing checkpoint", lambda t: a2s.load_checkpoint(t / "nope"), CheckpointError, ("nope.json",)),
    ("truncated checkpoint", lambda t: a2s.load_checkpoint(_truncate_weights(t)), CheckpointError, ("ck.safetensors",)),
    ("corrupt checkpoint json", lambda t: a2s.load_checkpoint(_corrupt_json(t)), CheckpointError, ("ck.json", "JSON")),
    (
        "other architecture",
        lambda t: a2s.load_checkpoint(_edit_json(t, '"num_classes": 10', '"num_classes": 5')),
        CheckpointError,
        ("ck.safetensors", "classifier", "shape mismatch"),
    ),
    (
        "invalid quant in checkpoint",
        lambda t: a2s.load_checkpoint(_edit_json(t, '"levels": 4', '"levels": 0')),
        CheckpointError,
        ("ck.json", "levels=0"),
    ),
    (
        "oversized architecture in json",
        lambda t: a2s.load_checkpoint(_edit_json(t, '"hidden": 128', '"hidden": 1000000000000')),
        CheckpointError,
        ("ck.json", "does not match the weights"),
    ),
    (
        "template of other architecture",
        lambda t: a2s.load_checkpoint(_saved(t), model=a2s.prepare(_cnn(), a2s.QuantConfig(levels=4)).features),
        CheckpointError,
        ("ck.safetensors", "missing"),
    ),
    ("pickled code in .pt", lambda t: load_torch_weights(_evil_pt(t)), CheckpointError, ("weights.pt", "refused")),
    ("missing .pt", lambda t: load_torch_weights(t / "w.pt"), CheckpointError, ("w.pt",)),
    (
        "pickled code in CIFAR",
        lambda t: a2s.load_dataset("cifar10", "test", data_dir=_evil_cifar(t)),
        DatasetError,
        ("test_batch", "refusing to load global"),
    ),
    (
        "NaN buffer",
        lambda t: check_finite_model(_nan_buffer_model()),
        InputError,
        ("buffer", "running_mean"),
    ),
]


@pytest.mark.parametrize(("call", "exc_type", "names"), [c[1:] for c in API_CASES], ids=[c[0] for c in API_CASES])
def test_api_bad_input(
    tmp_path: Path, call: Callable[[Path], Any], exc_type: type[Exception], names: tuple[str, ...]
) -> None:
    SENTINEL.unlink(missing_ok=True)
    with pytest.raises(exc_type) as info:
        call(tmp_path)
    assert isinstance(info.value, Ann2SnnError)
    message = str(info.value)
    for name in names:
        assert name in message, f"{name!r} not in {message!r}"
    assert not SENTINEL.exists(), "loading a file ran code from it"


def test_safe_pickle_refuses_code_and_keeps_data() -> None:
    evil = pickle.dumps([1, _Evil()])
    with pytest.raises(UnsafePickleError, match="posix.system|nt.system"):
        safe_pickle_load(io.BytesIO(evil))
    assert not SENTINEL.exists()
    assert safe_pickle_load(io.BytesIO(pickle.dumps({b"labels": [1, 2]}, protocol=2))) == {b"labels": [1, 2]}


def test_sanity_good_inputs_pass(tmp_path: Path) -> None:
    """The corpus checks must not fire on good inputs."""
    snn = _snn()
    assert a2s.simulate(snn, _x()).mean_output.shape == (2, 10)
    a2s.evaluate(_qann(), snn, [(_x(), _labels(0, 1))], (4,))
    check_finite_model(_qann())
    a2s.load_checkpoint(_saved(tmp_path))
    assert load_config({"levels": 2}, a2s.QuantConfig).levels == 2


# ----------------------------------------------------------------------------------------------------- CLI
runner = CliRunner()


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _saved(tmp_path_factory.mktemp("ckpt"))


def _cli_other_arch(tmp: Path, ck: Path) -> list[str]:
    return ["evaluate", "-c", str(_edit_json(tmp, '"num_classes": 10', '"num_classes": 7')), "-q"]


def _cli_corrupt(tmp: Path, ck: Path) -> list[str]:
    return ["convert", "-c", str(_truncate_weights(tmp))]


# (case id, args(tmp_path, checkpoint), substrings of the one-line message)
CLI_CASES: list[tuple[str, Callable[[Path, Path], list[str]], tuple[str, ...]]] = [
    ("missing checkpoint", lambda t, c: ["convert", "-c", str(t / "none")], ("none.json",)),
    ("truncated checkpoint", _cli_corrupt, ("ck.safetensors", "truncated")),
    ("other architecture", _cli_other_arch, ("ck.safetensors", "shape mismatch")),
    ("bad method", lambda t, c: ["convert", "-c", str(c), "--method", "magic"], ("method='magic'",)),
    ("bad leak", lambda t, c: ["convert", "-c", str(c), "--leak", "2"], ("leak=2.0",)),
    ("bad calibration", lambda t, c: ["convert", "-c", str(c), "--calibration", "magic"], ("calibration='magic'",)),
    (
        "refit without match",
        lambda t, c: ["convert", "-c", str(c), "--calibration", "da", "--estimator", "ema", "--weight-refit"],
        ("weight_refit=True", "estimator='ema'"),
    ),
    (
        "bad calibration sites",
        lambda t, c: ["convert", "-c", str(c), "--calibration", "da", "--calibration-sites", "dense"],
        ("calibration_sites='dense'",),
    ),
    ("bad T list", lambda t, c: ["evaluate", "-c", str(c), "-T", "4,x"], ("--timesteps", "4,x")),
    ("T=0", lambda t, c: ["evaluate", "-c", str(c), "-T", "0"], ("--timesteps",)),
    ("bad eval mode", lambda t, c: ["evaluate", "-c", str(c), "--mode", "fast", "-q"], ("mode='fast'",)),
    ("bad activation", lambda t, c: ["train", "-a", "gelu", "-o", str(t)], ("--activation", "gelu")),
    ("bad dataset", lambda t, c: ["train", "-d", "mnist", "-o", str(t)], ("mnist",)),
    ("bad model", lambda t, c: ["train", "-m", "nope", "-o", str(t)], ("nope",)),
    ("epochs=0", lambda t, c: ["train", "-e", "0", "-o", str(t)], ("epochs=0",)),
    ("checkpoint-every=0", lambda t, c: ["train", "--checkpoint-every", "0", "-o", str(t)], ("checkpoint-every=0",)),
    ("bad device", lambda t, c: ["train", "--device", "tpu", "-o", str(t)], ("device='tpu'",)),
    (
        "missing dataset files",
        lambda t, c: ["train", "-d", "fashion_mnist", "--data-dir", str(t), "-o", str(t / "o")],
        ("train-images-idx3-ubyte",),
    ),
    ("demo levels", lambda t, c: ["demo", "-L", "0", "-o", str(t)], ("levels=0",)),
    (
        "--json is a folder",
        lambda t, c: ["convert", "-c", str(c), "--json", str(t)],
        ("cannot write file", "directory"),
    ),
]


@pytest.mark.parametrize(("args", "names"), [c[1:] for c in CLI_CASES], ids=[c[0] for c in CLI_CASES])
def test_cli_bad_input(
    tmp_path: Path, checkpoint: Path, args: Callable[[Path, Path], list[str]], names: tuple[str, ...]
) -> None:
    result = runner.invoke(app, args(tmp_path, checkpoint))
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.output
    for name in names:
        assert name in lines[0], f"{name!r} not in {lines[0]!r}"


def test_cli_debug_shows_the_traceback(tmp_path: Path) -> None:
    result = runner.invoke(app, ["--debug", "convert", "-c", str(tmp_path / "none")])
    assert result.exit_code == 2  # a user error keeps its exit code with --debug
    assert "Traceback" in result.stderr and CheckpointError.__name__ in result.stderr
