"""Accuracy vs T on Fashion-MNIST (full test set): QCFS ANN vs serial IF vs parallel conversion, L = 4 and 8.

The QCFS-trained CNNs come from ``common.trained_cnn`` (cached checkpoints, trained on first use). For each L:
the ANN once; the serial IF SNN (v(0) = θ/2, reset by subtraction) simulated once for max(T) steps and read at
every prefix; the parallel SNN at every T in rate mode (exact spike counts, ~1 ANN forward), with spike mode
re-run on the first ``--check`` test images to confirm it predicts the same.

Run from the repository root::

    .venv/bin/python benchmarks/accuracy_vs_T.py --threads 1

Writes ``benchmarks/results/accuracy_vs_T.{csv,md,json,png}`` from the committed checkpoints. ``--retrain``
trains the models again from each of ``--seeds`` (default 0 1 2; about 40 minutes per model on a busy 2-core
machine; ``--keep-committed`` takes seed 0's rows from the last run on the committed checkpoints) and writes every
seed's row to ``accuracy_vs_T_seeds.*`` and their mean, min and max to ``accuracy_vs_T_seeds_summary.*``: the
spread that claims about trained models should quote.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import ann2snn as a2s  # noqa: E402
import common  # noqa: E402

TIMESTEPS = (1, 2, 4, 8, 16, 32)


def spike_rate_agreement(snn: a2s.SpikingModel, x: torch.Tensor, timesteps: tuple[int, ...]) -> float:
    """Fraction of (image, T) pairs where parallel spike and rate mode predict the same class."""
    same = total = 0
    for t in timesteps:
        spike = a2s.simulate(snn, x, t, mode="spike", record=False).predictions()
        rate = a2s.simulate(snn, x, t, mode="rate", record=False).predictions()
        same += int((spike == rate).sum())
        total += spike.numel()
    return same / total


def run_level(
    levels: int, loader: Any, check_x: torch.Tensor, epochs: int, seed: int = 0, retrain: bool = False, **kw: Any
) -> list[dict[str, Any]]:
    qann = common.trained_cnn("qcfs", levels=levels, epochs=epochs, seed=seed, retrain=retrain, **kw).eval()
    rows = []
    reports = {}
    for method in ("serial", "parallel"):
        start = time.perf_counter()
        snn = a2s.convert(qann, a2s.ConversionConfig(method=method, timesteps=levels))
        reports[method] = a2s.evaluate(qann, snn, loader, TIMESTEPS, progress=True)
        print(f"L={levels} {method}: {reports[method].snn_accuracy} ({time.perf_counter() - start:.0f} s)", flush=True)
        if method == "parallel":
            agree = spike_rate_agreement(snn, check_x, TIMESTEPS)
    # T = L with the BNs kept: exact against the float32 ANN (folding may move a pre-activation across a level)
    unfolded = a2s.convert(qann, a2s.ConversionConfig(method="parallel", timesteps=levels, fold_batchnorm=False))
    exact = a2s.evaluate(qann, unfolded, loader, (levels,)).snn_accuracy[levels]
    ann = reports["parallel"].ann_accuracy
    for t in TIMESTEPS:
        rows.append(
            {
                "L": levels,
                "T": t,
                "ann": ann,
                "serial_if": reports["serial"].snn_accuracy[t],
                "parallel": reports["parallel"].snn_accuracy[t],
                "parallel_minus_ann": reports["parallel"].snn_accuracy[t] - ann,
                "parallel_bn_unfolded": exact if t == levels else None,
                "spike_rate_agree": agree,
            }
        )
    return rows


def plot(rows: list[dict[str, Any]], stem: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    levels = sorted({r["L"] for r in rows})
    fig, axes = plt.subplots(1, len(levels), figsize=(5 * len(levels), 3.8), squeeze=False)
    for ax, L in zip(axes[0], levels, strict=True):
        sel = [r for r in rows if r["L"] == L]
        ts = [r["T"] for r in sel]
        ax.axhline(sel[0]["ann"], color="gray", ls="--", label=f"QCFS ANN (L={L})")
        ax.plot(ts, [r["serial_if"] for r in sel], marker="o", label="serial IF")
        ax.plot(ts, [r["parallel"] for r in sel], marker="s", label="parallel")
        ax.axvline(L, color="gray", ls=":", lw=0.8)
        ax.set(xscale="log", xlabel="T", ylabel="top-1 accuracy (%)", title=f"Fashion-MNIST cnn, QCFS L={L}")
        ax.set_xticks(list(TIMESTEPS), labels=[str(t) for t in TIMESTEPS])
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    common.save_figure(fig, stem)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--levels", type=int, nargs="+", default=[4, 8])
    parser.add_argument("--epochs", type=int, default=4, help="training epochs of the cached models")
    parser.add_argument("--limit", type=int, default=None, help="test images (default: all 10000)")
    parser.add_argument("--check", type=int, default=500, help="images on which spike mode is checked")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--stem", default="accuracy_vs_T")
    parser.add_argument("--retrain", action="store_true", help="retrain from --seeds instead of the committed models")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="seeds of --retrain")
    parser.add_argument("--train-limit", type=int, default=None, help="--retrain on the first N training images")
    parser.add_argument(
        "--keep-committed",
        action="store_true",
        help="with --retrain: seed 0 is the committed checkpoints (same recipe), rows from their last run",
    )
    args = parser.parse_args(argv)
    common.setup(args.threads)
    loader = common.test_loader(limit=args.limit)
    check_x = torch.stack([loader.dataset[i][0] for i in range(min(args.check, len(loader.dataset)))])
    if args.retrain:
        retrain(args, loader, check_x)
        return
    rows = []
    for levels in args.levels:
        rows += run_level(levels, loader, check_x, args.epochs)
    notes = (
        f"Fashion-MNIST test set ({len(loader.dataset)} images), cnn trained with QCFS (L levels, "
        f"{args.epochs} epochs). serial_if: IF neurons, v(0) = θ/2, reset by subtraction. parallel: parallel IF "
        "neurons (rate mode; spike_rate_agree = fraction of the first "
        f"{len(check_x)} images x all T on which spike mode predicts the same class). At T = L parallel "
        "conversion is lossless: parallel_bn_unfolded (ConversionConfig(fold_batchnorm=False), T = L only) equals "
        "ann; with BatchNorm folded (the default, column parallel) the folded conv rounds differently in float32, "
        "which can move a pre-activation that sits on a level boundary."
    )
    common.write_table(
        rows,
        args.stem,
        title="Accuracy vs T: QCFS ANN, serial IF, parallel conversion",
        notes=notes,
        meta={"args": vars(args)},
    )
    plot(rows, args.stem)


def committed_rows(args: argparse.Namespace) -> dict[int, list[dict[str, Any]]]:
    """Seed 0 = the committed checkpoints: their rows from this script's last run on them (results/<stem>.json),
    when it covered the same test images and epochs; levels it lacks are evaluated again."""
    path = common.RESULTS / f"{args.stem}.json"
    if not path.exists():
        return {}
    saved = json.loads(path.read_text())
    if saved["args"].get("limit") != args.limit or saved["args"].get("epochs") != args.epochs:
        return {}
    out: dict[int, list[dict[str, Any]]] = {}
    for row in saved["rows"]:
        out.setdefault(row["L"], []).append(row)
    return out


def retrained_rows(
    args: argparse.Namespace, levels: int, seed: int, loader: Any, check_x: torch.Tensor
) -> list[dict[str, Any]]:
    """One retrained model's rows, cached per (L, seed, epochs, training and test images) so that an interrupted
    run, or seeds run in separate processes, resume without evaluating a finished model again."""
    key = f"L{levels}_s{seed}_e{args.epochs}_n{args.train_limit}_t{len(loader.dataset)}"
    path = common.CACHE / "retrain" / "rows" / f"{key}.json"
    if path.exists():
        return json.loads(path.read_text())
    part = run_level(levels, loader, check_x, args.epochs, seed=seed, retrain=True, train_limit=args.train_limit)
    path.parent.mkdir(parents=True, exist_ok=True)
    common.atomic_write_text(path, json.dumps(part))
    return part


def retrain(args: argparse.Namespace, loader: Any, check_x: torch.Tensor) -> None:
    """Every L and seed from scratch; per-seed rows and their mean / min / max."""
    rows = []
    committed = committed_rows(args) if args.keep_committed and args.train_limit is None else {}
    for seed in args.seeds:
        for levels in args.levels:
            if seed == 0 and levels in committed:
                part = committed[levels]
            else:
                part = retrained_rows(args, levels, seed, loader, check_x)
            rows += [{"seed": seed, **row, "serial_minus_ann": row["serial_if"] - row["ann"]} for row in part]
    stem = f"{args.stem}_seeds"
    kept = " (seed 0: the committed checkpoint, same recipe)" if args.keep_committed and 0 in args.seeds else ""
    notes = (
        f"Retrained from seeds {args.seeds}{kept} (cnn, QCFS, {args.epochs} epochs), Fashion-MNIST test set "
        f"({len(loader.dataset)} images); columns as in {args.stem}.md."
    )
    common.write_table(rows, stem, title="Accuracy vs T, one row per training seed", notes=notes)
    values = ["ann", "serial_if", "parallel", "serial_minus_ann", "parallel_minus_ann"]
    summary = common.seed_summary(rows, ["L", "T"], values)
    common.write_table(
        summary,
        f"{stem}_summary",
        title=f"Accuracy vs T over {len(args.seeds)} training seeds: mean, min and max",
        notes=notes,
        meta={"args": vars(args)},
    )


if __name__ == "__main__":
    main()
