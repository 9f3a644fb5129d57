"""Builders of bad files for ``test_errors_corpus_files.py``: each ``setup(tmp)`` writes files, returns the call."""

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
import torch
from torch import nn

import ann2snn as a2s
from ann2snn.export.checkpoint import checkpoint_files
from ann2snn.io import atomic_write_text
from ann2snn.validation import load_config


# ------------------------------------------------------------------------------------------------ snapshots
def snapshot(root: Path) -> dict[str, tuple[str, str]]:
    """Every entry under ``root``: its kind and content hash (regular files), link target or nothing."""
    found: dict[str, tuple[str, str]] = {}
    for path in sorted(root.rglob("*")):
        rel = str(path.relative_to(root))
        if path.name == ".lock":  # train's out-dir lock file: rewritten by every run, holds no data
            continue
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


def saved(tmp: Path) -> Path:
    return a2s.save_checkpoint(tmp / "ck", _qann(), quant=a2s.QuantConfig(levels=4), dataset="digits")


def edit_meta(edit: Callable[[dict[str, Any]], None]) -> Callable[[Path], Callable[[], Any]]:
    """A case: save a checkpoint, change its metadata with ``edit``, then load it."""

    def setup(tmp: Path) -> Callable[[], Any]:
        stem = saved(tmp)
        json_path = checkpoint_files(stem)[1]
        meta = json.loads(json_path.read_text())
        edit(meta)
        json_path.write_text(json.dumps(meta))
        return lambda: a2s.load_checkpoint(stem)

    return setup


def raw_json(text: str | bytes) -> Callable[[Path], Callable[[], Any]]:
    def setup(tmp: Path) -> Callable[[], Any]:
        stem = saved(tmp)
        json_path = checkpoint_files(stem)[1]
        json_path.write_bytes(text.encode() if isinstance(text, str) else text)
        return lambda: a2s.load_checkpoint(stem)

    return setup


def _nested(depth: int) -> Any:
    value: Any = 0
    for _ in range(depth):
        value = [value]
    return value


def deep_json(depth: int) -> Callable[[Path], Callable[[], Any]]:
    def setup(tmp: Path) -> Callable[[], Any]:
        stem = saved(tmp)
        json_path = checkpoint_files(stem)[1]
        text = json_path.read_text().replace('"extra": {}', '"extra": {"x": ' + "[" * depth + "]" * depth + "}", 1)
        json_path.write_text(text)
        return lambda: a2s.load_checkpoint(stem)

    return setup


def huge_json(tmp: Path) -> Callable[[], Any]:
    stem = saved(tmp)
    with open(checkpoint_files(stem)[1], "r+b") as handle:  # sparse: takes no disk space
        handle.truncate(300 * 2**20)
    return lambda: a2s.load_checkpoint(stem)


def set_field(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
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


def resume_case(edit: Callable[[dict[str, Any]], None]) -> Callable[[Path], Callable[[], Any]]:
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


def swap_momentum(state: dict[str, Any]) -> None:
    items = state["optimizer"]["state"]["__items__"]
    items[0][1], items[1][1] = items[1][1], items[0][1]


def weight_as_rng(state: dict[str, Any]) -> None:
    state["rng"]["torch"][0] = {"__tensor__": "model.weight"}


# ---------------------------------------------------------------------------------------------------- CIFAR
def cifar(batch: Any, raw: bytes | None = None) -> Callable[[Path], Callable[[], Any]]:
    def setup(tmp: Path) -> Callable[[], Any]:
        folder = tmp / "cifar-10-batches-py"
        folder.mkdir()
        (folder / "test_batch").write_bytes(raw if raw is not None else pickle.dumps(batch, protocol=2))
        return lambda: a2s.load_dataset("cifar10", "test", data_dir=tmp)

    return setup


def shared_lists(depth: int) -> list[Any]:
    """A few hundred bytes when pickled (shared references), 2**depth leaves when walked."""
    value: list[Any] = [0]
    for _ in range(depth):
        value = [value, value]
    return value


class ByteArrayBomb:
    def __reduce__(self) -> tuple[Any, ...]:
        return (bytearray, (2**40,))


def huge_cifar(tmp: Path) -> Callable[[], Any]:
    folder = tmp / "cifar-10-batches-py"
    folder.mkdir()
    with open(folder / "test_batch", "wb") as handle:
        handle.truncate(600 * 2**20)
    return lambda: a2s.load_dataset("cifar10", "test", data_dir=tmp)


PIXELS = np.zeros((2, 3072), dtype=np.uint8)


# ------------------------------------------------------------------------------------------------ IDX files
def idx_header(magic: int, *dims: int) -> bytes:
    return magic.to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in dims)


def idx(images: bytes, gz: bool = False, labels: bytes | None = None) -> Callable[[Path], Callable[[], Any]]:
    def setup(tmp: Path) -> Callable[[], Any]:
        name = "t10k-images-idx3-ubyte" + (".gz" if gz else "")
        (tmp / name).write_bytes(gzip.compress(images, compresslevel=1) if gz else images)
        (tmp / "t10k-labels-idx1-ubyte").write_bytes(labels or idx_header(0x801, 2) + b"\x01\x02")
        return lambda: a2s.load_dataset("fashion_mnist", "test", data_dir=tmp)

    return setup


def gzip_truncated(tmp: Path) -> Callable[[], Any]:
    data = gzip.compress(idx_header(0x803, 2, 28, 28) + bytes(2 * 784))
    (tmp / "t10k-images-idx3-ubyte.gz").write_bytes(data[: len(data) // 2])
    (tmp / "t10k-labels-idx1-ubyte").write_bytes(idx_header(0x801, 2) + b"\x01\x02")
    return lambda: a2s.load_dataset("fashion_mnist", "test", data_dir=tmp)


# ---------------------------------------------------------------------------------------------------- images
def image(make: Callable[[Path], None]) -> Callable[[Path], Callable[[], Any]]:
    def setup(tmp: Path) -> Callable[[], Any]:
        folder = tmp / "train" / "cat"
        folder.mkdir(parents=True)
        make(folder / "a.png")
        return lambda: a2s.load_dataset("imagefolder", "train", data_dir=tmp, image_size=8)[0]

    return setup


def png(size: tuple[int, int], mode: str = "1") -> Callable[[Path], None]:
    def make(path: Path) -> None:
        from PIL import Image

        Image.new(mode, size).save(path)

    return make


def truncated_png(path: Path) -> None:
    png((64, 64), "RGB")(path)
    path.write_bytes(path.read_bytes()[:60])


# --------------------------------------------------------------------------------------------------- outputs
def fifo(tmp: Path, name: str) -> Path:
    path = tmp / name
    os.mkfifo(path)
    return path


def save_onto_fifo(tmp: Path) -> Callable[[], Any]:
    saved(tmp)
    fifo(tmp, "other.json")
    return lambda: a2s.save_checkpoint(tmp / "other", _qann())


def save_weights_onto_dir(tmp: Path) -> Callable[[], Any]:
    (tmp / "w.safetensors").mkdir()
    return lambda: a2s.save_checkpoint(tmp / "w", _qann())


def save_under_a_file(tmp: Path) -> Callable[[], Any]:
    (tmp / "plain").write_text("x")
    return lambda: a2s.save_checkpoint(tmp / "plain" / "ck", _qann())


def export_onto_fifo(tmp: Path) -> Callable[[], Any]:
    from ann2snn.export.nir import export_nir

    snn = a2s.convert(_qann(), a2s.ConversionConfig(method="serial", timesteps=4))
    target = fifo(tmp, "m.nir")
    return lambda: export_nir(snn, target, (1, 8, 8))


def text_onto_fifo_via_link(tmp: Path) -> Callable[[], Any]:
    pipe = fifo(tmp, "pipe")
    (tmp / "report.md").symlink_to(pipe)
    return lambda: atomic_write_text(tmp / "report.md", "# report\n")


# ------------------------------------------------------------------------------------------ config JSON files
def config_file(text: str | None = None, size: int | None = None) -> Callable[[Path], Callable[[], Any]]:
    def setup(tmp: Path) -> Callable[[], Any]:
        path = tmp / "conv.json"
        path.write_text(text or "{}")
        if size is not None:
            with open(path, "r+b") as handle:
                handle.truncate(size)
        return lambda: load_config(path, a2s.ConversionConfig)

    return setup


# (case id, setup(tmp) -> call, exception type, substrings the message must contain)
