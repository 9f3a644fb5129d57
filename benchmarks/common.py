"""Shared pieces of the benchmark scripts: Fashion-MNIST data, cached trained models, result tables.

Trained models are committed as checkpoints in ``benchmarks/models/`` so every script reruns in minutes; a
model missing there is trained (resumably, in ``benchmarks/results/cache/`` or ``$ANN2SNN_BENCH_CACHE``) and
copied there. Run a script from the repository root, e.g. ``.venv/bin/python benchmarks/accuracy_vs_T.py``.
"""

from __future__ import annotations

import csv
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
DATASET = "fashion_mnist"


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


def cached_model(key: str, train_fn: Callable[[Path], None]) -> nn.Module:
    """The committed checkpoint ``models/<key>``; if missing, ``train_fn(out_dir)`` trains it (resumable, writing
    ``out_dir/final``) and the result is copied into ``models/``."""
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
    return a2s.load_checkpoint(stem).model


def trained_cnn(
    activation: str = "qcfs", levels: int = 8, epochs: int = 4, seed: int = 0, lr: float = 0.05, **quant: Any
) -> nn.Module:
    """A "cnn" trained on Fashion-MNIST with ``activation`` (``relu``, ``qcfs``, ``clip``, ``steprelu``).

    Committed in ``models/``; a missing one is trained (a few minutes on 2 cores) by :func:`cached_model`.
    """
    key = f"cnn_{activation}" + (f"_L{levels}" if activation == "qcfs" else "") + f"_e{epochs}_s{seed}"
    key += "".join(f"_{k}{v}" for k, v in sorted(quant.items()))

    def train_fn(out: Path) -> None:
        train_ds, test_ds = fashion_data()
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

    return cached_model(key, train_fn)


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
        return f"{v:.2f}" if isinstance(v, float) else str(v)

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
        json.dumps({"rows": list(rows), "machine": machine(), **(meta or {})}, indent=2, default=str) + "\n",
    )
    return paths


def save_figure(fig: Any, stem: str) -> Path:
    """Save a matplotlib figure as ``results/<stem>.png`` atomically."""
    path = RESULTS / f"{stem}.png"
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=120, bbox_inches="tight")
    return path
