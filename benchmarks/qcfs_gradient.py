"""QAT with QCFS's two straight-through gradients on Fashion-MNIST: the reference rule vs the clamped one.

``QuantConfig(qcfs_gradient="reference")`` (the default) passes gradient 1 wrt z on [−θ/2L, θ + θ/2L) and has the
reference's dy/dθ; ``"clamped"`` passes it on [−θ/2L, θ − θ/2L] (see ``ann2snn.functional.qcfs``). For every L and
seed both rules train the same "cnn" from the same initial weights, on the same batches in the same order; the
table gives the ANN's test accuracy and the parallel SNN's at T = L (no calibration). To fit a small CPU budget
the models train on a seeded subset of the training set for a few epochs (both in the output); the numbers are
for comparing the two rules, not the best accuracy of the model.

Run from the repository root::

    .venv/bin/python benchmarks/qcfs_gradient.py --train-limit 15000 --epochs 2 --seeds 0 [--levels 4 8]

Writes ``benchmarks/results/qcfs_gradient.{csv,md,json}`` (rewritten after every model, so a partial run leaves
the finished rows).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import ann2snn as a2s  # noqa: E402
import common  # noqa: E402

GRADIENTS = ("reference", "clamped")
TITLE = "QCFS straight-through gradient in QAT: reference vs clamped"


def train_subset(limit: int, seed: int) -> Any:
    """``limit`` training images drawn by a seeded permutation (the same for both gradient rules)."""
    full = a2s.load_dataset(common.DATASET, "train")
    if limit >= len(full):
        return full
    keep = torch.randperm(len(full), generator=torch.Generator().manual_seed(1000 + seed))[:limit]
    return torch.utils.data.Subset(full, keep.tolist())


def run_one(levels: int, gradient: str, seed: int, train_ds: Any, test: Any, epochs: int, lr: float) -> dict[str, Any]:
    model = a2s.create_model("cnn", num_classes=10, in_channels=1, image_size=28, seed=seed)
    qcfg = a2s.QuantConfig(activation="qcfs", levels=levels, qcfs_gradient=gradient)
    prepared = a2s.prepare(model, qcfg)
    start = time.perf_counter()
    result = a2s.train(
        prepared,
        train_ds,
        a2s.TrainConfig(epochs=epochs, batch_size=128, lr=lr, seed=seed),
        progress=False,
        quant=qcfg,
        dataset=common.DATASET,
    )
    seconds = time.perf_counter() - start
    qann = result.model.cpu().eval()
    snn = a2s.convert(qann, a2s.ConversionConfig(method="parallel", timesteps=levels))
    report = a2s.evaluate(qann, snn, test, (levels,))
    return {
        "L": levels,
        "train_images": len(train_ds),
        "epochs": epochs,
        "seed": seed,
        "gradient": gradient,
        "ann": round(report.ann_accuracy, 2),  # in %
        "parallel_T_eq_L": round(report.snn_accuracy[levels], 2),
        "train_loss": result.history[-1]["loss"],
        "train_seconds": round(seconds, 1),
    }


def summary(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Mean, min and max over seeds per (L, training budget, gradient)."""
    out = []
    for key in dict.fromkeys((r["L"], r["train_images"], r["epochs"]) for r in rows):
        for gradient in GRADIENTS:
            sel = [r for r in rows if (r["L"], r["train_images"], r["epochs"]) == key and r["gradient"] == gradient]
            if sel:
                out.append(
                    {
                        "L": key[0],
                        "train_images": key[1],
                        "epochs": key[2],
                        "gradient": gradient,
                        "seeds": len(sel),
                        "ann_mean": statistics.fmean(r["ann"] for r in sel),
                        "ann_min": min(r["ann"] for r in sel),
                        "ann_max": max(r["ann"] for r in sel),
                        "parallel_T_eq_L_mean": statistics.fmean(r["parallel_T_eq_L"] for r in sel),
                    }
                )
    return out


def merge(stems: list[str], stem: str) -> None:
    """One table (and its seed means) from the rows of partial runs, e.g. one per seed or L run in parallel."""
    rows = [r for s in stems for r in json.loads((common.RESULTS / f"{s}.json").read_text())["rows"]]
    rows.sort(key=lambda r: (r["L"], r["train_images"], r["epochs"], r["seed"], GRADIENTS.index(r["gradient"])))
    notes = f"Rows of the runs {', '.join(stems)} (benchmarks/results/<stem>.json), merged by `--merge`."
    common.write_table(rows, stem, title=TITLE, notes=notes, meta={"merged": stems})
    common.write_table(summary(rows), stem + "_summary", title=TITLE + ", mean", notes=notes)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--levels", type=int, nargs="+", default=[4, 8])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--train-limit", type=int, default=20000)
    parser.add_argument("--lr", type=float, default=0.05)
    parser.add_argument("--gradients", nargs="+", default=list(GRADIENTS), choices=GRADIENTS)
    parser.add_argument("--stem", default="qcfs_gradient", help="results/<stem>.* (partial runs: their own stem)")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--merge", nargs="+", default=None, help="no training: merge these results/<stem>.json runs")
    args = parser.parse_args()
    if args.merge:
        merge(args.merge, args.stem)
        return
    common.setup(args.threads)
    test = common.test_loader()
    rows: list[dict[str, Any]] = []
    notes = (
        f"Fashion-MNIST, model 'cnn', {args.epochs} epoch(s) on a seeded subset of {args.train_limit} training "
        f"images (SGD, lr {args.lr}, batch 128); accuracy on the full test set (10 000 images), in %. Both rules "
        "start from the same weights and see the same batches. 'parallel_T_eq_L': the parallel SNN at T = L, "
        "uncalibrated. Mean over seeds in qcfs_gradient_summary.*"
    )
    meta = {"epochs": args.epochs, "train_limit": args.train_limit, "lr": args.lr, "seeds": args.seeds}
    for seed in args.seeds:
        train_ds = train_subset(args.train_limit, seed)
        for levels in args.levels:
            for gradient in args.gradients:
                row = run_one(levels, gradient, seed, train_ds, test, args.epochs, args.lr)
                rows.append(row)
                print(row, flush=True)
                common.write_table(rows, args.stem, title=TITLE, notes=notes, meta=meta)
                common.write_table(summary(rows), args.stem + "_summary", title=TITLE + ", mean", notes=notes)


if __name__ == "__main__":
    main()
