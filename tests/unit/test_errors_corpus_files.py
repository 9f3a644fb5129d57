"""Corpus of bad files and outputs: tampered metadata, malformed data files, outputs that are not regular files.

Each API case builds its files in ``tmp_path``, snapshots the folder, runs one call and asserts (1) the exception
type, (2) that the message names the field, file or option that is wrong and (3) that the folder is exactly as
before: nothing lost, nothing half-written, no temporary file left. CLI cases assert exit code 2 and one line
``error: ...`` naming the file, plus the same snapshot check. Full-disk and kill faults are tested for real in
``test_disk_faults.py``.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import pickle
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn
from typer.testing import CliRunner

import ann2snn as a2s
from ann2snn.cli import app
from ann2snn.errors import CheckpointError, ConfigError, DatasetError, ExportError, OutputError
from ann2snn.export.checkpoint import checkpoint_files
from ann2snn.io import atomic_write_text
from ann2snn.validation import load_config

torch.set_num_threads(1)
runner = CliRunner()


# ------------------------------------------------------------------------------------------------ snapshots
def snapshot(root: Path) -> dict[str, tuple[str, str]]:
    """Every entry under ``root``: its kind and content hash (regular files), link target or nothing."""
    found: dict[str, tuple[str, str]] = {}
    for path in sorted(root.rglob("*")):
        rel = str(path.relative_to(root))
        mode = path.lstat().st_mode
        if stat.S_ISLNK(mode):
            found[rel] = ("link", os.readlink(path))
        elif stat.S_ISREG(mode):
            size = path.stat().st_size
            digest = hashlib.sha256(path.read_bytes()).hexdigest() if size < 2**24 else f"{size}:{path.stat().st_mtime}"
            found[rel] = ("file", digest)
        else:
            found[rel] = ("fifo" if stat.S_ISFIFO(mode) else "dir" if stat.S_ISDIR(mode) else "other", "")
    return found


# ----------------------------------------------------------------------------------------------- checkpoints
def _qann() -> nn.Module:
    torch.manual_seed(0)
    model = a2s.create_model("cnn", num_classes=10, in_channels=1, image_size=8)
    return a2s.prepare(model, a2s.QuantConfig(levels=4))


def _saved(tmp: Path) -> Path:
    return a2s.save_checkpoint(tmp / "ck", _qann(), quant=a2s.QuantConfig(levels=4), dataset="digits")


def _edit_meta(edit: Callable[[dict[str, Any]], None]) -> Callable[[Path], Callable[[], Any]]:
    """A case: save a checkpoint, change its metadata with ``edit``, then load it."""

    def setup(tmp: Path) -> Callable[[], Any]:
        stem = _saved(tmp)
        json_path = checkpoint_files(stem)[1]
        meta = json.loads(json_path.read_text())
        edit(meta)
        json_path.write_text(json.dumps(meta))
        return lambda: a2s.load_checkpoint(stem)

    return setup


def _raw_json(text: str | bytes) -> Callable[[Path], Callable[[], Any]]:
    def setup(tmp: Path) -> Callable[[], Any]:
        stem = _saved(tmp)
        json_path = checkpoint_files(stem)[1]
        json_path.write_bytes(text.encode() if isinstance(text, str) else text)
        return lambda: a2s.load_checkpoint(stem)

    return setup


def _nested(depth: int) -> Any:
    value: Any = 0
    for _ in range(depth):
        value = [value]
    return value


def _deep_json(depth: int) -> Callable[[Path], Callable[[], Any]]:
    def setup(tmp: Path) -> Callable[[], Any]:
        stem = _saved(tmp)
        json_path = checkpoint_files(stem)[1]
        text = json_path.read_text().replace('"extra": {}', '"extra": {"x": ' + "[" * depth + "]" * depth + "}", 1)
        json_path.write_text(text)
        return lambda: a2s.load_checkpoint(stem)

    return setup


def _huge_json(tmp: Path) -> Callable[[], Any]:
    stem = _saved(tmp)
    with open(checkpoint_files(stem)[1], "r+b") as handle:  # sparse: takes no disk space
        handle.truncate(300 * 2**20)
    return lambda: a2s.load_checkpoint(stem)


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def edit(meta: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node: Any = meta
        for key in parents:
            node = node[int(key)] if isinstance(node, list) else node[key]
        if isinstance(node, list):
            node[int(last)] = value
        else:
            node[last] = value

    return edit


# ----------------------------------------------------------------------------------------------- resume state
_TRAIN_CFG = a2s.TrainConfig(epochs=2, batch_size=4, momentum=0.9)
_template: list[Path] = []


def _train_data() -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    return torch.rand(16, 4, generator=gen), torch.randint(0, 3, (16,), generator=gen)


def _resume_case(edit: Callable[[dict[str, Any]], None]) -> Callable[[Path], Callable[[], Any]]:
    """A case: a run stopped after 2 steps, its ``last.json`` resume state changed by ``edit``, then resumed."""

    def setup(tmp: Path) -> Callable[[], Any]:
        out = tmp / "run"
        torch.manual_seed(0)
        a2s.train(nn.Linear(4, 3), _train_data(), _TRAIN_CFG, out_dir=out, max_steps=2, progress=False)
        json_path = out / "last.json"
        meta = json.loads(json_path.read_text())
        edit(meta["training_state"])
        json_path.write_text(json.dumps(meta))
        return lambda: a2s.train(nn.Linear(4, 3), _train_data(), _TRAIN_CFG, out_dir=out, resume=True, progress=False)

    return setup


def _swap_momentum(state: dict[str, Any]) -> None:
    items = state["optimizer"]["state"]["__items__"]
    items[0][1], items[1][1] = items[1][1], items[0][1]


def _weight_as_rng(state: dict[str, Any]) -> None:
    state["rng"]["torch"][0] = {"__tensor__": "model.weight"}


# ---------------------------------------------------------------------------------------------------- CIFAR
def _cifar(batch: Any, raw: bytes | None = None) -> Callable[[Path], Callable[[], Any]]:
    def setup(tmp: Path) -> Callable[[], Any]:
        folder = tmp / "cifar-10-batches-py"
        folder.mkdir()
        (folder / "test_batch").write_bytes(raw if raw is not None else pickle.dumps(batch, protocol=2))
        return lambda: a2s.load_dataset("cifar10", "test", data_dir=tmp)

    return setup


def _shared_lists(depth: int) -> list[Any]:
    """A few hundred bytes when pickled (shared references), 2**depth leaves when walked."""
    value: list[Any] = [0]
    for _ in range(depth):
        value = [value, value]
    return value


class _ByteArrayBomb:
    def __reduce__(self) -> tuple[Any, ...]:
        return (bytearray, (2**40,))


def _huge_cifar(tmp: Path) -> Callable[[], Any]:
    folder = tmp / "cifar-10-batches-py"
    folder.mkdir()
    with open(folder / "test_batch", "wb") as handle:
        handle.truncate(600 * 2**20)
    return lambda: a2s.load_dataset("cifar10", "test", data_dir=tmp)


_PIXELS = np.zeros((2, 3072), dtype=np.uint8)


# ------------------------------------------------------------------------------------------------ IDX files
def _idx_header(magic: int, *dims: int) -> bytes:
    return magic.to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in dims)


def _idx(images: bytes, gz: bool = False, labels: bytes | None = None) -> Callable[[Path], Callable[[], Any]]:
    def setup(tmp: Path) -> Callable[[], Any]:
        name = "t10k-images-idx3-ubyte" + (".gz" if gz else "")
        (tmp / name).write_bytes(gzip.compress(images, compresslevel=1) if gz else images)
        (tmp / "t10k-labels-idx1-ubyte").write_bytes(labels or _idx_header(0x801, 2) + b"\x01\x02")
        return lambda: a2s.load_dataset("fashion_mnist", "test", data_dir=tmp)

    return setup


def _gzip_truncated(tmp: Path) -> Callable[[], Any]:
    data = gzip.compress(_idx_header(0x803, 2, 28, 28) + bytes(2 * 784))
    (tmp / "t10k-images-idx3-ubyte.gz").write_bytes(data[: len(data) // 2])
    (tmp / "t10k-labels-idx1-ubyte").write_bytes(_idx_header(0x801, 2) + b"\x01\x02")
    return lambda: a2s.load_dataset("fashion_mnist", "test", data_dir=tmp)


# ---------------------------------------------------------------------------------------------------- images
def _image(make: Callable[[Path], None]) -> Callable[[Path], Callable[[], Any]]:
    def setup(tmp: Path) -> Callable[[], Any]:
        folder = tmp / "train" / "cat"
        folder.mkdir(parents=True)
        make(folder / "a.png")
        return lambda: a2s.load_dataset("imagefolder", "train", data_dir=tmp, image_size=8)[0]

    return setup


def _png(size: tuple[int, int], mode: str = "1") -> Callable[[Path], None]:
    def make(path: Path) -> None:
        from PIL import Image

        Image.new(mode, size).save(path)

    return make


def _truncated_png(path: Path) -> None:
    _png((64, 64), "RGB")(path)
    path.write_bytes(path.read_bytes()[:60])


# --------------------------------------------------------------------------------------------------- outputs
def _fifo(tmp: Path, name: str) -> Path:
    path = tmp / name
    os.mkfifo(path)
    return path


def _save_onto_fifo(tmp: Path) -> Callable[[], Any]:
    _saved(tmp)
    _fifo(tmp, "other.json")
    return lambda: a2s.save_checkpoint(tmp / "other", _qann())


def _save_weights_onto_dir(tmp: Path) -> Callable[[], Any]:
    (tmp / "w.safetensors").mkdir()
    return lambda: a2s.save_checkpoint(tmp / "w", _qann())


def _save_under_a_file(tmp: Path) -> Callable[[], Any]:
    (tmp / "plain").write_text("x")
    return lambda: a2s.save_checkpoint(tmp / "plain" / "ck", _qann())


def _export_onto_fifo(tmp: Path) -> Callable[[], Any]:
    from ann2snn.export.nir import export_nir

    snn = a2s.convert(_qann(), a2s.ConversionConfig(method="serial", timesteps=4))
    target = _fifo(tmp, "m.nir")
    return lambda: export_nir(snn, target, (1, 8, 8))


def _text_onto_fifo_via_link(tmp: Path) -> Callable[[], Any]:
    fifo = _fifo(tmp, "pipe")
    (tmp / "report.md").symlink_to(fifo)
    return lambda: atomic_write_text(tmp / "report.md", "# report\n")


# ------------------------------------------------------------------------------------------ config JSON files
def _config_file(text: str | None = None, size: int | None = None) -> Callable[[Path], Callable[[], Any]]:
    def setup(tmp: Path) -> Callable[[], Any]:
        path = tmp / "conv.json"
        path.write_text(text or "{}")
        if size is not None:
            with open(path, "r+b") as handle:
                handle.truncate(size)
        return lambda: load_config(path, a2s.ConversionConfig)

    return setup


# (case id, setup(tmp) -> call, exception type, substrings the message must contain)
Case = tuple[str, Callable[[Path], Callable[[], Any]], type[Exception], tuple[str, ...]]
API_CASES: list[Case] = [
    # --- checkpoint metadata (ck.json)
    ("json nested 100000 deep", _deep_json(100_000), CheckpointError, ("ck.json", "nested")),
    ("json nested 200 deep", _deep_json(200), CheckpointError, ("ck.json", "nested more than 64")),
    ("json larger than the cap", _huge_json, CheckpointError, ("ck.json", "bytes, more than")),
    ("json not utf-8", _raw_json(b'{"format": "\xff\xfe"}'), CheckpointError, ("ck.json", "UTF-8")),
    ("json top level list", _raw_json("[1, 2]"), CheckpointError, ("ck.json", "expected a JSON object")),
    ("json truncated", _raw_json('{"format": "ann2snn-checkpoint", "form'), CheckpointError, ("ck.json", "JSON")),
    ("sha256 not hex", _edit_meta(_set("weights.sha256", "../" * 21 + "x")), CheckpointError, ("weights.sha256",)),
    ("size a string", _edit_meta(_set("weights.size", "1000")), CheckpointError, ("weights.size",)),
    ("weights a list", _edit_meta(_set("weights", [])), CheckpointError, ("ck.json", "'weights'")),
    ("kwargs a list", _edit_meta(_set("model.kwargs", [1])), CheckpointError, ("model.kwargs",)),
    ("model name a number", _edit_meta(_set("model.name", 3)), CheckpointError, ("model.name",)),
    ("quant levels text", _edit_meta(_set("quant.levels", "four")), CheckpointError, ("ck.json", "quant")),
    ("quant a string", _edit_meta(_set("quant", "qcfs")), CheckpointError, ("ck.json", "'quant'")),
    ("metrics a list", _edit_meta(_set("metrics", [0.5])), CheckpointError, ("ck.json", "'metrics'")),
    ("format version text", _edit_meta(_set("format_version", "1")), CheckpointError, ("format_version",)),
    ("format version newer", _edit_meta(_set("format_version", 99)), CheckpointError, ("format_version 99",)),
    ("float marker text", _edit_meta(_set("metrics", {"a": {"__float__": "1e999x"}})), CheckpointError, ("__float__",)),
    ("float marker list", _edit_meta(_set("metrics", {"a": {"__float__": [1]}})), CheckpointError, ("__float__",)),
    ("items key a list", _edit_meta(_set("extra", {"__items__": [[[1], 2]]})), CheckpointError, ("__items__",)),
    ("items not pairs", _edit_meta(_set("extra", {"__items__": [[1, 2, 3]]})), CheckpointError, ("__items__",)),
    ("tensor marker a list", _edit_meta(_set("metrics", {"a": {"__tensor__": []}})), CheckpointError, ("tensor",)),
    # --- config files (load_config)
    ("config nested 100000 deep", _config_file("[" * 100_000 + "]" * 100_000), ConfigError, ("conv.json", "nested")),
    ("config nested 100 deep", _config_file('{"a": ' + "[" * 100 + "]" * 100 + "}"), ConfigError, ("conv.json",)),
    ("config of 50 MB", _config_file(size=50 * 2**20), ConfigError, ("conv.json", "bytes")),
    # --- resume state (last.json of a training run)
    ("resume epoch text", _resume_case(_set("epoch", "one")), CheckpointError, ("last.json", "'epoch'")),
    ("resume epoch too big", _resume_case(_set("epoch", 10**6)), CheckpointError, ("last.json", "'epoch'", "more")),
    ("resume step negative", _resume_case(_set("global_step", -1)), CheckpointError, ("'global_step'",)),
    ("resume running a list", _resume_case(_set("running", [])), CheckpointError, ("last.json", "'running'")),
    ("resume running sum", _resume_case(_set("running.loss_sum", "x")), CheckpointError, ("running.loss_sum",)),
    ("resume history text", _resume_case(_set("history", "x")), CheckpointError, ("'history'",)),
    ("resume config missing", _resume_case(lambda s: s.pop("config")), CheckpointError, ("'config'", "missing")),
    ("resume groups a dict", _resume_case(_set("optimizer.param_groups", {})), CheckpointError, ("'optimizer'",)),
    ("resume lr text", _resume_case(_set("optimizer.param_groups.0.lr", "fast")), CheckpointError, ("lr",)),
    ("resume momentum swapped", _resume_case(_swap_momentum), CheckpointError, ("last.json", "momentum_buffer")),
    ("resume rng empty", _resume_case(_set("rng.torch", [])), CheckpointError, ("last.json", "rng.torch")),
    ("resume rng float", _resume_case(_weight_as_rng), CheckpointError, ("rng.torch", "uint8")),
    # --- CIFAR batches
    (
        "cifar shared nested lists",
        _cifar({b"data": _shared_lists(60), b"labels": _shared_lists(60)}),
        DatasetError,
        ("test_batch", "b'data'", "list"),
    ),
    (
        "cifar labels shared lists",
        _cifar({b"data": _PIXELS, b"labels": _shared_lists(60)}),
        DatasetError,
        ("test_batch", "labels"),
    ),
    ("cifar label 0.7", _cifar({b"data": _PIXELS, b"labels": [0.7, 1]}), DatasetError, ("labels", "float")),
    ("cifar label bool", _cifar({b"data": _PIXELS, b"labels": [True, 1]}), DatasetError, ("labels", "bool")),
    ("cifar huge label", _cifar({b"data": _PIXELS, b"labels": [2**70, 1]}), DatasetError, ("labels", "outside")),
    (
        "cifar nan pixels",
        _cifar({b"data": np.full((2, 3072), np.nan), b"labels": [0, 1]}),
        DatasetError,
        ("b'data'", "float64"),
    ),
    ("cifar label count", _cifar({b"data": _PIXELS, b"labels": [0]}), DatasetError, ("labels", "1 entries")),
    ("cifar labels a dict", _cifar({b"data": _PIXELS, b"labels": {0: 1}}), DatasetError, ("labels", "dict")),
    (
        "cifar labels float array",
        _cifar({b"data": _PIXELS, b"labels": np.array([0.0, 1.0])}),
        DatasetError,
        ("labels", "float64"),
    ),
    ("cifar batch a list", _cifar([1, 2]), DatasetError, ("test_batch", "not a cifar10 batch")),
    ("cifar bytearray bomb", _cifar({b"data": _ByteArrayBomb(), b"labels": []}), DatasetError, ("bytearray",)),
    ("cifar file too large", _huge_cifar, DatasetError, ("test_batch", "bytes, more than")),
    # --- IDX files
    (
        "idx dims overflow int64",
        _idx(_idx_header(0x803, 2**31, 2**31, 4)),
        DatasetError,
        ("t10k-images-idx3-ubyte", "header declares"),
    ),
    (
        "idx declares more than the file",
        _idx(_idx_header(0x803, 1000, 28, 28) + bytes(784)),
        DatasetError,
        ("t10k-images-idx3-ubyte", "truncated"),
    ),
    (
        "idx gzip inflates past the header",
        _idx(_idx_header(0x803, 2, 28, 28) + bytes(8 * 2**20), gz=True),
        DatasetError,
        ("t10k-images-idx3-ubyte.gz", "more than 1568"),
    ),
    ("idx gzip truncated", _gzip_truncated, DatasetError, ("t10k-images-idx3-ubyte.gz",)),
    (
        "idx labels dims overflow",
        _idx(_idx_header(0x803, 2, 28, 28) + bytes(1568), labels=_idx_header(0x801, 2**32 - 1)),
        DatasetError,
        ("t10k-labels-idx1-ubyte", "header declares"),
    ),
    # --- images
    ("png decompression bomb", _image(_png((12_000, 12_000))), DatasetError, ("a.png", "pixels")),
    ("png 1 x 10000 strip", _image(_png((10_000, 1))), DatasetError, ("a.png", "elongated")),
    ("png truncated", _image(_truncated_png), DatasetError, ("a.png", "cannot read image")),
    # --- outputs that are not regular files
    ("checkpoint json is a fifo", _save_onto_fifo, OutputError, ("other.json", "FIFO")),
    ("checkpoint weights is a dir", _save_weights_onto_dir, OutputError, ("w.safetensors", "directory")),
    ("checkpoint under a file", _save_under_a_file, CheckpointError, ("plain", "cannot save checkpoint")),
    ("nir export onto a fifo", _export_onto_fifo, ExportError, ("m.nir", "FIFO")),
    ("report through a link to a fifo", _text_onto_fifo_via_link, OutputError, ("pipe", "report.md", "FIFO")),
]


@pytest.mark.parametrize(("setup", "exc_type", "names"), [c[1:] for c in API_CASES], ids=[c[0] for c in API_CASES])
def test_api_bad_file(
    tmp_path: Path, setup: Callable[[Path], Callable[[], Any]], exc_type: type[Exception], names: tuple[str, ...]
) -> None:
    call = setup(tmp_path)
    before = snapshot(tmp_path)
    with pytest.raises(exc_type) as info:
        call()
    message = str(info.value)
    for name in names:
        assert name in message, f"{name!r} not in {message!r}"
    assert snapshot(tmp_path) == before, "the failed call changed, removed or left files"


# ------------------------------------------------------------------------------------------------------- CLI
def _cli_meta(edit: Callable[[dict[str, Any]], None]) -> Callable[[Path], list[str]]:
    def args(tmp: Path) -> list[str]:
        _edit_meta(edit)(tmp)
        return ["convert", "-c", str(tmp / "ck")]

    return args


def _cli_deep(tmp: Path) -> list[str]:
    _deep_json(100_000)(tmp)
    return ["convert", "-c", str(tmp / "ck")]


def _cli_idx(tmp: Path) -> list[str]:
    (tmp / "train-images-idx3-ubyte").write_bytes(_idx_header(0x803, 2**31, 2**31, 4))
    (tmp / "train-labels-idx1-ubyte").write_bytes(_idx_header(0x801, 2) + b"\x01\x02")
    return ["train", "-d", "fashion_mnist", "--data-dir", str(tmp), "-e", "1", "-o", str(tmp / "out")]


def _cli_cifar(tmp: Path) -> list[str]:
    _cifar({b"data": _shared_lists(60), b"labels": _shared_lists(60)})(tmp)
    return ["evaluate", "-c", str(_saved(tmp)), "-d", "cifar10", "--data-dir", str(tmp), "-q"]


def _cli_json_fifo(tmp: Path) -> list[str]:
    stem = _saved(tmp)
    return ["convert", "-c", str(stem), "--json", str(_fifo(tmp, "summary.json"))]


def _cli_export_fifo(tmp: Path) -> list[str]:
    stem = _saved(tmp)
    return ["export", "-c", str(stem), "-o", str(_fifo(tmp, "m.nir")), "-T", "4"]


def _cli_export_dir(tmp: Path) -> list[str]:
    stem = _saved(tmp)
    (tmp / "m.nir").mkdir()
    return ["export", "-c", str(stem), "-o", str(tmp / "m.nir"), "-T", "4"]


CLI_CASES: list[tuple[str, Callable[[Path], list[str]], tuple[str, ...]]] = [
    ("deeply nested ck.json", _cli_deep, ("ck.json", "nested")),
    ("sha256 not hex", _cli_meta(_set("weights.sha256", "z" * 64)), ("ck.json", "weights.sha256")),
    ("quant a list", _cli_meta(_set("quant", [4])), ("ck.json", "'quant'")),
    ("items key a list", _cli_meta(_set("extra", {"__items__": [[[1], 2]]})), ("ck.json", "__items__")),
    ("idx dims overflow", _cli_idx, ("train-images-idx3-ubyte", "header declares")),
    ("cifar shared lists", _cli_cifar, ("test_batch", "b'data'")),
    ("--json is a fifo", _cli_json_fifo, ("summary.json", "FIFO")),
    ("export onto a fifo", _cli_export_fifo, ("m.nir", "FIFO")),
    ("export onto a folder", _cli_export_dir, ("m.nir", "directory")),
]


@pytest.mark.parametrize("args", [c[1] for c in CLI_CASES], ids=[c[0] for c in CLI_CASES])
def test_cli_bad_file(tmp_path: Path, args: Callable[[Path], list[str]]) -> None:
    names = next(c[2] for c in CLI_CASES if c[1] is args)
    argv = args(tmp_path)
    before = snapshot(tmp_path)
    result = runner.invoke(app, argv)
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    for name in names:
        assert name in lines[0], f"{name!r} not in {lines[0]!r}"
    assert snapshot(tmp_path) == before, "the failed command changed, removed or left files"


def test_corpus_size() -> None:
    """docs/errors.md promises this many cases; removing one must be a decision, not an accident."""
    assert len(API_CASES) + len(CLI_CASES) >= 70


def test_sanity_good_files_load(tmp_path: Path) -> None:
    """The checks must not fire on good files."""
    a2s.load_checkpoint(_saved(tmp_path))
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    (folder / "test_batch").write_bytes(pickle.dumps({b"data": _PIXELS, b"labels": [0, 9]}, protocol=2))
    x, y = a2s.load_dataset("cifar10", "test", data_dir=tmp_path)[1]
    assert x.shape == (3, 32, 32) and int(y) == 9
    (tmp_path / "t10k-images-idx3-ubyte.gz").write_bytes(gzip.compress(_idx_header(0x803, 2, 28, 28) + bytes(1568)))
    (tmp_path / "t10k-labels-idx1-ubyte").write_bytes(_idx_header(0x801, 2) + b"\x01\x02")
    assert len(a2s.load_dataset("fashion_mnist", "test", data_dir=tmp_path)) == 2
    _png((4000, 100), "RGB")(tmp_path / "wide.png")
    from ann2snn.data.imagefolder import load_image

    assert load_image(tmp_path / "wide.png", 8).shape == (3, 8, 8)
