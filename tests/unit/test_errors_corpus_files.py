"""Corpus of bad files and outputs: tampered metadata, malformed data files, outputs that are not regular files.

Each API case builds its files in ``tmp_path``, snapshots the folder, runs one call and asserts (1) the exception
type, (2) that the message names the field, file or option that is wrong and (3) that the folder is exactly as
before: nothing lost, nothing half-written, no temporary file left. CLI cases assert exit code 2 and one line
``error: ...`` naming the file, plus the same snapshot check. Full-disk and kill faults are tested for real in
``test_disk_faults.py``.
"""

from __future__ import annotations

import gzip
import pickle
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from _bad_files import (
    PIXELS,
    ByteArrayBomb,
    cifar,
    config_file,
    deep_json,
    edit_meta,
    export_onto_fifo,
    fifo,
    gzip_truncated,
    huge_cifar,
    huge_json,
    idx,
    idx_header,
    image,
    png,
    raw_json,
    resume_case,
    save_onto_fifo,
    save_under_a_file,
    save_weights_onto_dir,
    saved,
    set_field,
    shared_lists,
    snapshot,
    swap_momentum,
    text_onto_fifo_via_link,
    truncated_png,
    weight_as_rng,
)
from typer.testing import CliRunner

import ann2snn as a2s
from ann2snn.cli import app
from ann2snn.errors import CheckpointError, ConfigError, DatasetError, ExportError, OutputError

torch.set_num_threads(1)
runner = CliRunner()


Case = tuple[str, Callable[[Path], Callable[[], Any]], type[Exception], tuple[str, ...]]
API_CASES: list[Case] = [
    # --- checkpoint metadata (ck.json)
    ("json nested 100000 deep", deep_json(100_000), CheckpointError, ("ck.json", "nested")),
    ("json nested 200 deep", deep_json(200), CheckpointError, ("ck.json", "nested more than 64")),
    ("json larger than the cap", huge_json, CheckpointError, ("ck.json", "bytes, more than")),
    ("json not utf-8", raw_json(b'{"format": "\xff\xfe"}'), CheckpointError, ("ck.json", "UTF-8")),
    ("json top level list", raw_json("[1, 2]"), CheckpointError, ("ck.json", "expected a JSON object")),
    ("json truncated", raw_json('{"format": "ann2snn-checkpoint", "form'), CheckpointError, ("ck.json", "JSON")),
    ("sha256 not hex", edit_meta(set_field("weights.sha256", "../" * 21 + "x")), CheckpointError, ("weights.sha256",)),
    ("size a string", edit_meta(set_field("weights.size", "1000")), CheckpointError, ("weights.size",)),
    ("weights a list", edit_meta(set_field("weights", [])), CheckpointError, ("ck.json", "'weights'")),
    ("kwargs a list", edit_meta(set_field("model.kwargs", [1])), CheckpointError, ("model.kwargs",)),
    ("model name a number", edit_meta(set_field("model.name", 3)), CheckpointError, ("model.name",)),
    ("quant levels text", edit_meta(set_field("quant.levels", "four")), CheckpointError, ("ck.json", "quant")),
    ("quant a string", edit_meta(set_field("quant", "qcfs")), CheckpointError, ("ck.json", "'quant'")),
    ("metrics a list", edit_meta(set_field("metrics", [0.5])), CheckpointError, ("ck.json", "'metrics'")),
    ("format version text", edit_meta(set_field("format_version", "1")), CheckpointError, ("format_version",)),
    ("format version newer", edit_meta(set_field("format_version", 99)), CheckpointError, ("format_version 99",)),
    (
        "float marker text",
        edit_meta(set_field("metrics", {"a": {"__float__": "1e9x"}})),
        CheckpointError,
        ("__float__",),
    ),
    ("float marker list", edit_meta(set_field("metrics", {"a": {"__float__": [1]}})), CheckpointError, ("__float__",)),
    ("items key a list", edit_meta(set_field("extra", {"__items__": [[[1], 2]]})), CheckpointError, ("__items__",)),
    ("items not pairs", edit_meta(set_field("extra", {"__items__": [[1, 2, 3]]})), CheckpointError, ("__items__",)),
    ("tensor marker a list", edit_meta(set_field("metrics", {"a": {"__tensor__": []}})), CheckpointError, ("tensor",)),
    # --- config files (load_config)
    ("config nested 100000 deep", config_file("[" * 100_000 + "]" * 100_000), ConfigError, ("conv.json", "nested")),
    ("config nested 100 deep", config_file('{"a": ' + "[" * 100 + "]" * 100 + "}"), ConfigError, ("conv.json",)),
    ("config of 50 MB", config_file(size=50 * 2**20), ConfigError, ("conv.json", "bytes")),
    # --- resume state (last.json of a training run)
    ("resume epoch text", resume_case(set_field("epoch", "one")), CheckpointError, ("last.json", "'epoch'")),
    ("resume epoch too big", resume_case(set_field("epoch", 10**6)), CheckpointError, ("last.json", "'epoch'", "more")),
    ("resume step negative", resume_case(set_field("global_step", -1)), CheckpointError, ("'global_step'",)),
    ("resume running a list", resume_case(set_field("running", [])), CheckpointError, ("last.json", "'running'")),
    ("resume running sum", resume_case(set_field("running.loss_sum", "x")), CheckpointError, ("running.loss_sum",)),
    ("resume history text", resume_case(set_field("history", "x")), CheckpointError, ("'history'",)),
    ("resume config missing", resume_case(lambda s: s.pop("config")), CheckpointError, ("'config'", "missing")),
    ("resume groups a dict", resume_case(set_field("optimizer.param_groups", {})), CheckpointError, ("'optimizer'",)),
    ("resume lr text", resume_case(set_field("optimizer.param_groups.0.lr", "fast")), CheckpointError, ("lr",)),
    ("resume momentum swapped", resume_case(swap_momentum), CheckpointError, ("last.json", "momentum_buffer")),
    ("resume rng empty", resume_case(set_field("rng.torch", [])), CheckpointError, ("last.json", "rng.torch")),
    ("resume rng float", resume_case(weight_as_rng), CheckpointError, ("rng.torch", "uint8")),
    # --- CIFAR batches
    (
        "cifar shared nested lists",
        cifar({b"data": shared_lists(60), b"labels": shared_lists(60)}),
        DatasetError,
        ("test_batch", "b'data'", "list"),
    ),
    (
        "cifar labels shared lists",
        cifar({b"data": PIXELS, b"labels": shared_lists(60)}),
        DatasetError,
        ("test_batch", "labels"),
    ),
    ("cifar label 0.7", cifar({b"data": PIXELS, b"labels": [0.7, 1]}), DatasetError, ("labels", "float")),
    ("cifar label bool", cifar({b"data": PIXELS, b"labels": [True, 1]}), DatasetError, ("labels", "bool")),
    ("cifar huge label", cifar({b"data": PIXELS, b"labels": [2**70, 1]}), DatasetError, ("labels", "outside")),
    (
        "cifar nan pixels",
        cifar({b"data": np.full((2, 3072), np.nan), b"labels": [0, 1]}),
        DatasetError,
        ("b'data'", "float64"),
    ),
    ("cifar label count", cifar({b"data": PIXELS, b"labels": [0]}), DatasetError, ("labels", "1 entries")),
    ("cifar labels a dict", cifar({b"data": PIXELS, b"labels": {0: 1}}), DatasetError, ("labels", "dict")),
    (
        "cifar labels float array",
        cifar({b"data": PIXELS, b"labels": np.array([0.0, 1.0])}),
        DatasetError,
        ("labels", "float64"),
    ),
    ("cifar batch a list", cifar([1, 2]), DatasetError, ("test_batch", "not a cifar10 batch")),
    ("cifar bytearray bomb", cifar({b"data": ByteArrayBomb(), b"labels": []}), DatasetError, ("bytearray",)),
    ("cifar file too large", huge_cifar, DatasetError, ("test_batch", "bytes, more than")),
    # --- IDX files
    (
        "idx dims overflow int64",
        idx(idx_header(0x803, 2**31, 2**31, 4)),
        DatasetError,
        ("t10k-images-idx3-ubyte", "header declares"),
    ),
    (
        "idx declares more than the file",
        idx(idx_header(0x803, 1000, 28, 28) + bytes(784)),
        DatasetError,
        ("t10k-images-idx3-ubyte", "truncated"),
    ),
    (
        "idx gzip inflates past the header",
        idx(idx_header(0x803, 2, 28, 28) + bytes(8 * 2**20), gz=True),
        DatasetError,
        ("t10k-images-idx3-ubyte.gz", "more than 1568"),
    ),
    ("idx gzip truncated", gzip_truncated, DatasetError, ("t10k-images-idx3-ubyte.gz",)),
    (
        "idx labels dims overflow",
        idx(idx_header(0x803, 2, 28, 28) + bytes(1568), labels=idx_header(0x801, 2**32 - 1)),
        DatasetError,
        ("t10k-labels-idx1-ubyte", "header declares"),
    ),
    # --- images
    ("png decompression bomb", image(png((12_000, 12_000))), DatasetError, ("a.png", "pixels")),
    ("png 1 x 10000 strip", image(png((10_000, 1))), DatasetError, ("a.png", "elongated")),
    ("png truncated", image(truncated_png), DatasetError, ("a.png", "cannot read image")),
    # --- outputs that are not regular files
    ("checkpoint json is a fifo", save_onto_fifo, OutputError, ("other.json", "FIFO")),
    ("checkpoint weights is a dir", save_weights_onto_dir, OutputError, ("w.safetensors", "directory")),
    ("checkpoint under a file", save_under_a_file, CheckpointError, ("plain", "cannot save checkpoint")),
    ("nir export onto a fifo", export_onto_fifo, ExportError, ("m.nir", "FIFO")),
    ("report through a link to a fifo", text_onto_fifo_via_link, OutputError, ("pipe", "report.md", "FIFO")),
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
        edit_meta(edit)(tmp)
        return ["convert", "-c", str(tmp / "ck")]

    return args


def _cli_deep(tmp: Path) -> list[str]:
    deep_json(100_000)(tmp)
    return ["convert", "-c", str(tmp / "ck")]


def _cli_idx(tmp: Path) -> list[str]:
    (tmp / "train-images-idx3-ubyte").write_bytes(idx_header(0x803, 2**31, 2**31, 4))
    (tmp / "train-labels-idx1-ubyte").write_bytes(idx_header(0x801, 2) + b"\x01\x02")
    return ["train", "-d", "fashion_mnist", "--data-dir", str(tmp), "-e", "1", "-o", str(tmp / "out")]


def _cli_cifar(tmp: Path) -> list[str]:
    cifar({b"data": shared_lists(60), b"labels": shared_lists(60)})(tmp)
    model = a2s.create_model("cnn", num_classes=10, in_channels=3, image_size=32, seed=0)
    stem = a2s.save_checkpoint(tmp / "ck", model, dataset="cifar10")  # a model the CIFAR data fits
    return ["evaluate", "-c", str(stem), "-d", "cifar10", "--data-dir", str(tmp), "-q"]


def _cli_json_fifo(tmp: Path) -> list[str]:
    stem = saved(tmp)
    return ["convert", "-c", str(stem), "--json", str(fifo(tmp, "summary.json"))]


def _cli_export_fifo(tmp: Path) -> list[str]:
    stem = saved(tmp)
    return ["export", "-c", str(stem), "-o", str(fifo(tmp, "m.nir")), "-T", "4"]


def _cli_export_dir(tmp: Path) -> list[str]:
    stem = saved(tmp)
    (tmp / "m.nir").mkdir()
    return ["export", "-c", str(stem), "-o", str(tmp / "m.nir"), "-T", "4"]


CLI_CASES: list[tuple[str, Callable[[Path], list[str]], tuple[str, ...]]] = [
    ("deeply nested ck.json", _cli_deep, ("ck.json", "nested")),
    ("sha256 not hex", _cli_meta(set_field("weights.sha256", "z" * 64)), ("ck.json", "weights.sha256")),
    ("quant a list", _cli_meta(set_field("quant", [4])), ("ck.json", "'quant'")),
    ("items key a list", _cli_meta(set_field("extra", {"__items__": [[[1], 2]]})), ("ck.json", "__items__")),
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
    a2s.load_checkpoint(saved(tmp_path))
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    (folder / "test_batch").write_bytes(pickle.dumps({b"data": PIXELS, b"labels": [0, 9]}, protocol=2))
    x, y = a2s.load_dataset("cifar10", "test", data_dir=tmp_path)[1]
    assert x.shape == (3, 32, 32) and int(y) == 9
    (tmp_path / "t10k-images-idx3-ubyte.gz").write_bytes(gzip.compress(idx_header(0x803, 2, 28, 28) + bytes(1568)))
    (tmp_path / "t10k-labels-idx1-ubyte").write_bytes(idx_header(0x801, 2) + b"\x01\x02")
    assert len(a2s.load_dataset("fashion_mnist", "test", data_dir=tmp_path)) == 2
    png((4000, 100), "RGB")(tmp_path / "wide.png")
    from ann2snn.data.imagefolder import load_image

    assert load_image(tmp_path / "wide.png", 8).shape == (3, 8, 8)
