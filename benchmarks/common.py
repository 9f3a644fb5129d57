"""Shared pieces of the benchmark scripts: Fashion-MNIST data, cached trained models, result tables.

Trained models are committed as checkpoints in ``benchmarks/models/`` so every script reruns in minutes; a
model missing there is trained (resumably, in ``benchmarks/results/cache/`` or ``$ANN2SNN_BENCH_CACHE``) and
copied there. The SHA-256 of every committed checkpoint file is recorded in ``results/checkpoints.sha256``
(``sha256sum`` format: ``cd benchmarks && sha256sum -c results/checkpoints.sha256``) and checked on every load;
each result's JSON names the checkpoints it used and their hashes. ``retrain=True`` (the scripts' ``--retrain``)
trains a model from its seed into the cache instead, never touching the committed files. Run a script from the
repository root, e.g. ``.venv/bin/python benchmarks/accuracy_vs_T.py``.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import platform
import shutil
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

import ann2snn as a2s
from ann2snn.export.checkpoint import checkpoint_exists
from ann2snn.io import atomic_path, atomic_write_text

ROOT = Path(__file__).resolve().parent
RESULTS = ROOT / "results"
CACHE = Path(os.environ.get("ANN2SNN_BENCH_CACHE", RESULTS / "cache"))
MODELS = ROOT / "models"
CHECKSUMS = RESULTS / "checkpoints.sha256"
DATASET = "fashion_mnist"
LOADED: dict[str, str] = {}  # checkpoints this run used: "models/<key>" (or the cache path) -> weights sha256
_SOURCES: dict[int, dict[str, Any]] = {}  # id(model) -> Checkpoint.source of the models cached_model returned


class ChecksumError(RuntimeError):
    """A committed benchmark checkpoint does not match the SHA-256 recorded for it."""


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_checksums() -> dict[str, str]:
    """``results/checkpoints.sha256`` as {path relative to benchmarks/: sha256}."""
    if not CHECKSUMS.is_file():
        return {}
    out = {}
    for line in CHECKSUMS.read_text().splitlines():
        if line.strip():
            digest, name = line.split(maxsplit=1)
            out[name.lstrip("*")] = digest
    return out


def record_checksums(paths: Sequence[Path]) -> None:
    """Add (or replace) the SHA-256 of ``paths`` in ``results/checkpoints.sha256``."""
    sums = read_checksums()
    for path in paths:
        sums[path.relative_to(ROOT).as_posix()] = file_sha256(path)
    atomic_write_text(CHECKSUMS, "".join(f"{d}  {n}\n" for n, d in sorted(sums.items())))


def verify_checkpoint(stem: Path) -> str:
    """Check both files of the committed checkpoint ``stem`` against the recorded SHA-256; returns the weights'.

    A checkpoint with no record yet (one just trained) is recorded; a mismatch raises :class:`ChecksumError`.
    """
    files = [stem.with_name(f"{stem.name}.{ext}") for ext in ("safetensors", "json")]
    sums = read_checksums()
    missing = [f for f in files if f.relative_to(ROOT).as_posix() not in sums]
    if missing:
        record_checksums(missing)
        print(f"recorded the sha256 of {', '.join(f.name for f in missing)} in {CHECKSUMS.name}", flush=True)
        sums = read_checksums()
    for f in files:
        name = f.relative_to(ROOT).as_posix()
        actual = file_sha256(f)
        if actual != sums[name]:
            raise ChecksumError(
                f"{name} has sha256 {actual}, but {CHECKSUMS.relative_to(ROOT)} records {sums[name]}: the committed "
                "checkpoint changed; restore it (git checkout -- benchmarks/models) or, if the change is meant, "
                "delete its lines there and rerun to record the new hash"
            )
    return sums[files[0].relative_to(ROOT).as_posix()]


def setup(threads: int | None = None) -> None:
    """Deterministic CPU settings shared by the scripts (threads default to the machine's cores)."""
    torch.set_num_threads(threads or int(os.environ.get("BENCH_THREADS", os.cpu_count() or 1)))
    torch.manual_seed(0)


def fashion_data(limit: int | None = None) -> tuple[Any, Any]:
    """Fashion-MNIST (train, test) datasets from the Debian package files."""
    return a2s.load_dataset(DATASET, "train", limit=limit), a2s.load_dataset(DATASET, "test", limit=limit)


def test_loader(batch_size: int = 500, limit: int | None = None) -> Any:
    return a2s.make_loader(fashion_data(limit)[1], batch_size, shuffle=False)


def calibration_batches(n_batches: int = 16, batch_size: int = 128, seed: int = 0) -> list[Any]:
    """The first ``n_batches`` batches of a seeded shuffle of the training set."""
    loader = a2s.make_loader(fashion_data()[0], batch_size, shuffle=True, seed=seed)
    out = []
    for i, batch in enumerate(loader):
        if i >= n_batches:
            break
        out.append(batch)
    return out


def cached_model(key: str, train_fn: Callable[[Path], None], *, retrain: bool = False) -> nn.Module:
    """The committed checkpoint ``models/<key>``, its SHA-256 checked; if missing, ``train_fn(out_dir)`` trains it
    (resumable, writing ``out_dir/final``) and the result is copied into ``models/`` and recorded.

    ``retrain=True``: train (or resume) in ``<cache>/retrain/<key>`` and load that, whatever ``models/`` holds.
    """
    if retrain:
        out = CACHE / "retrain" / key
        if not checkpoint_exists(out / "final"):
            start = time.perf_counter()
            train_fn(out)
            print(f"retrained {key} in {time.perf_counter() - start:.0f} s", flush=True)
        ckpt = a2s.load_checkpoint(out / "final")
        LOADED[str(out / "final")] = ckpt.meta["weights"]["sha256"]
        _SOURCES[id(ckpt.model)] = ckpt.source
        return ckpt.model
    stem = MODELS / key
    if not checkpoint_exists(stem):
        out = CACHE / key
        if not checkpoint_exists(out / "final"):
            start = time.perf_counter()
            train_fn(out)
            print(f"trained {key} in {time.perf_counter() - start:.0f} s", flush=True)
        MODELS.mkdir(parents=True, exist_ok=True)
        for ext in ("safetensors", "json"):
            shutil.copyfile(out / f"final.{ext}", MODELS / f"{key}.{ext}")
    digest = verify_checkpoint(stem)
    LOADED[stem.relative_to(ROOT).as_posix()] = digest
    ckpt = a2s.load_checkpoint(stem)
    _SOURCES[id(ckpt.model)] = {**ckpt.source, "checkpoint": f"benchmarks/{stem.relative_to(ROOT).as_posix()}"}
    return ckpt.model


def source(model: nn.Module) -> dict[str, Any]:
    """What a report should name for a model from :func:`cached_model` (checkpoint path, hash, model, dataset)."""
    return dict(_SOURCES.get(id(model), {}))


def trained_cnn(
    activation: str = "qcfs",
    levels: int = 8,
    epochs: int = 4,
    seed: int = 0,
    lr: float = 0.05,
    *,
    retrain: bool = False,
    train_limit: int | None = None,
    **quant: Any,
) -> nn.Module:
    """A "cnn" trained on Fashion-MNIST with ``activation`` (``relu``, ``qcfs``, ``clip``, ``steprelu``).

    Committed in ``models/``; a missing one is trained by :func:`cached_model` (about 10 minutes per epoch on a
    busy 2-core machine); ``retrain=True`` trains it from ``seed`` into the cache instead (on the first
    ``train_limit`` training images when given: smoke tests of the retrain path).
    """
    key = f"cnn_{activation}" + (f"_L{levels}" if activation == "qcfs" else "") + f"_e{epochs}_s{seed}"
    key += "".join(f"_{k}{v}" for k, v in sorted(quant.items()))
    key += f"_n{train_limit}" if train_limit is not None else ""

    def train_fn(out: Path) -> None:
        train_ds, test_ds = fashion_data(train_limit)
        model = a2s.create_model("cnn", num_classes=10, in_channels=1, image_size=28, seed=seed)
        qcfg = None
        if activation != "relu":
            qcfg = a2s.QuantConfig(activation=activation, levels=levels, **quant)
            model = a2s.prepare(model, qcfg)
        result = a2s.train(
            model,
            train_ds,
            a2s.TrainConfig(epochs=epochs, batch_size=128, lr=lr, seed=seed),
            out_dir=out,
            eval_data=test_ds,
            progress=False,
            quant=qcfg,
            dataset=DATASET,
            resume=True,
        )
        print(f"{key}: eval accuracy {result.eval_acc:.4f}", flush=True)

    return cached_model(key, train_fn, retrain=retrain)


def machine() -> dict[str, Any]:
    """Where the numbers were taken."""
    return {
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "cpu": platform.processor() or platform.machine(),
        "cuda": torch.cuda.get_device_name() if torch.cuda.is_available() else None,
    }


def markdown_table(rows: Sequence[dict[str, Any]], columns: Sequence[str] | None = None) -> str:
    columns = list(columns or rows[0].keys())

    def cell(v: Any) -> str:
        return f"{v:.2f}" if isinstance(v, float) else "" if v is None else str(v)

    lines = ["| " + " | ".join(columns) + " |", "|" + "|".join("---:" for _ in columns) + "|"]
    lines += ["| " + " | ".join(cell(r.get(c, "")) for c in columns) + " |" for r in rows]
    return "\n".join(lines)


def write_table(
    rows: Sequence[dict[str, Any]],
    stem: str,
    *,
    title: str = "",
    notes: str = "",
    columns: Sequence[str] | None = None,
    meta: dict[str, Any] | None = None,
) -> dict[str, Path]:
    """Write ``results/<stem>.csv``, ``.md`` and ``.json`` atomically; returns the paths."""
    columns = list(columns or rows[0].keys())
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    paths = {k: RESULTS / f"{stem}.{k}" for k in ("csv", "md", "json")}
    atomic_write_text(paths["csv"], buf.getvalue())
    md = (f"# {title}\n\n" if title else "") + markdown_table(rows, columns) + "\n" + (f"\n{notes}\n" if notes else "")
    atomic_write_text(paths["md"], md)
    atomic_write_text(
        paths["json"],
        json.dumps(
            {"rows": list(rows), "machine": machine(), "checkpoints": dict(sorted(LOADED.items())), **(meta or {})},
            indent=2,
            default=str,
        )
        + "\n",
    )
    return paths


def seed_summary(
    rows: Sequence[dict[str, Any]], keys: Sequence[str], values: Sequence[str], seed_key: str = "seed"
) -> list[dict[str, Any]]:
    """Mean, min and max of ``values`` over the seeds, per distinct ``keys`` (for ``--retrain`` runs)."""
    groups: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault(tuple(row[k] for k in keys), []).append(row)
    out = []
    for key, group in groups.items():
        summary: dict[str, Any] = dict(zip(keys, key, strict=True))
        summary["seeds"] = ",".join(str(r[seed_key]) for r in group)
        for v in values:
            xs = [float(r[v]) for r in group]
            summary[f"{v}_mean"] = sum(xs) / len(xs)
            summary[f"{v}_min"], summary[f"{v}_max"] = min(xs), max(xs)
        out.append(summary)
    return out


def save_figure(fig: Any, stem: str) -> Path:
    """Save a matplotlib figure as ``results/<stem>.png`` atomically."""
    path = RESULTS / f"{stem}.png"
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=120, bbox_inches="tight")
    return path
