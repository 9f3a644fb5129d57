"""Calibration benchmark on Fashion-MNIST (issue 4): training-free conversion of a plain-ReLU CNN, and a QCFS L=8
CNN run at T < L, with distribution-aware (DA) calibration and the classic baselines.

Rows: (model, method, T) with ANN and SNN accuracy, the gap in percentage points, the calibration cost and the
number of test images. Parallel SNNs are evaluated in rate mode (exactly the spike-mode output, see
tests/unit/test_lossless.py) on the full test set; serial baselines are stepped in time on the first
``--serial-limit`` test images (they cost T forward passes).

Run from the repository root::

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/calibration.py            # writes results/calibration.*
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/calibration.py --quick    # small smoke run
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/calibration.py --only ema --spread-seeds 0  # the EMA rows only
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import torch

import ann2snn as a2s
import common

RELU_TS = (1, 2, 4, 8, 16, 32)
QCFS_TS = (1, 2, 4)
PARALLEL = {  # label -> ConversionConfig fields (training-free ReLU model: per-channel data thresholds)
    "parallel, no calibration": dict(),
    "parallel + DA ema (paper)": dict(calibration="da", estimator="ema"),
    "parallel + DA ema (paper), conv sites only": dict(calibration="da", estimator="ema", calibration_sites="conv"),
    "parallel + DA ema_theta": dict(calibration="da", estimator="ema_theta"),
    "parallel + DA mean": dict(calibration="da", estimator="mean"),
    "parallel + DA match, no refit": dict(calibration="da", estimator="match", weight_refit=False),
    "parallel + DA match + weight refit": dict(calibration="da", estimator="match", weight_refit=True),
}
SPREAD_METHODS = ("parallel + DA match, no refit", "parallel + DA match + weight refit")
SPREAD_TS = {"relu": (1, 2, 4, 8), "qcfs": (1, 2, 4)}
SERIAL = {  # serial IF baselines (methods.md §5)
    "serial IF, max (Diehl)": dict(threshold_mode="max", v_init=0.0, per_channel=False),
    "serial IF, 99.9% (Rueckauer)": dict(threshold_mode="percentile", v_init=0.0, per_channel=False),
    "serial IF, MSE θ (Li)": dict(threshold_mode="mse", v_init=0.0, per_channel=True),
    "serial IF, MSE θ + bias corr. (Li)": dict(
        threshold_mode="mse", v_init=0.0, per_channel=True, calibration="li_bias"
    ),
    "serial IF, MSE θ + potential corr. (Li)": dict(
        threshold_mode="mse", v_init=0.0, per_channel=True, calibration="li_potential"
    ),
}


def accuracy(model: Any, x: torch.Tensor, y: torch.Tensor, T: int | None = None, batch: int = 1000) -> float:
    """ANN accuracy (``T=None``), or SNN accuracy: rate mode for parallel SNNs, spike mode for serial ones."""
    correct = 0
    with torch.no_grad():
        for i in range(0, len(x), batch):
            xb = x[i : i + batch]
            if T is None:
                out = model(xb)
            else:
                mode = "rate" if model.execution == "parallel" else "spike"
                out = a2s.simulate(model, xb, T, mode=mode, record=False).mean_output
            correct += int((out.argmax(1) == y[i : i + batch]).sum())
    return 100.0 * correct / len(x)


def run_model(
    name: str,
    model: Any,
    timesteps: tuple[int, ...],
    methods: dict[str, dict[str, Any]],
    base: dict[str, Any],
    calib: list[Any],
    x: torch.Tensor,
    y: torch.Tensor,
    serial_limit: int,
) -> list:
    rows = []
    ann_acc = accuracy(model, x, y)
    ann_sub = accuracy(model, x[:serial_limit], y[:serial_limit])
    for T in timesteps:
        for label, fields in methods.items():
            cfg = a2s.ConversionConfig(**{**base, **fields, "timesteps": T, "calibration_batches": len(calib)})
            start = time.perf_counter()
            snn = a2s.convert(model, cfg, calibration_data=calib, max_batches=len(calib))
            seconds = time.perf_counter() - start
            serial = snn.execution == "serial"
            xs, ys = (x[:serial_limit], y[:serial_limit]) if serial else (x, y)
            acc = accuracy(snn, xs, ys, T)
            ref = ann_sub if serial else ann_acc
            rows.append(
                dict(
                    model=name,
                    method=label,
                    T=T,
                    ann_acc=round(ref, 2),
                    snn_acc=round(acc, 2),
                    gap_pp=round(ref - acc, 2),
                    calib_s=round(float(getattr(snn, "calibration_seconds", 0.0)), 2),
                    convert_s=round(seconds, 2),
                    calib_batches=len(calib) if cfg.calibration else 0,
                    test_images=len(xs),
                )
            )
            print(
                f"{name:>10} T={T:<2} {label:<42} acc {acc:6.2f}  gap {ref - acc:6.2f} pp  ({seconds:.1f} s)",
                flush=True,
            )
    return rows


def spread(
    name: str, model: Any, timesteps: tuple[int, ...], base: dict[str, Any], seeds: int, n_batches: int, x: Any, y: Any
) -> list:
    """Gaps of DA ``match`` with and without weight refit on calibration sets drawn with seeds 1..``seeds``
    (seed 0 is the main table's set)."""
    ann_acc = accuracy(model, x, y)
    rows = []
    for T in timesteps:
        for label in SPREAD_METHODS:
            gaps = []
            for seed in range(1, seeds + 1):
                calib = common.calibration_batches(n_batches, 128, seed=seed)
                fields = {**base, **PARALLEL[label], "timesteps": T, "calibration_batches": n_batches}
                snn = a2s.convert(model, a2s.ConversionConfig(**fields), calibration_data=calib, max_batches=n_batches)
                gaps.append(ann_acc - accuracy(snn, x, y, T))
            g = torch.tensor(gaps, dtype=torch.float64)
            rows.append(
                dict(
                    model=name,
                    method=label,
                    T=T,
                    seeds=seeds,
                    gap_mean=round(float(g.mean()), 2),
                    gap_std=round(float(g.std()) if seeds > 1 else 0.0, 2),
                    gap_min=round(float(g.min()), 2),
                    gap_max=round(float(g.max()), 2),
                )
            )
            print(f"{name:>10} T={T:<2} {label:<36} over {seeds} sets: {[round(v, 2) for v in gaps]}", flush=True)
    return rows


def plot(rows: list[dict[str, Any]]) -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    models = list(dict.fromkeys(r["model"] for r in rows))
    fig, axes = plt.subplots(1, len(models), figsize=(6.5 * len(models), 4.5), squeeze=False)
    for ax, model in zip(axes[0], models, strict=True):
        sub = [r for r in rows if r["model"] == model]
        for method in dict.fromkeys(r["method"] for r in sub):
            pts = [(r["T"], max(r["gap_pp"], 0.05)) for r in sub if r["method"] == method]
            style = "-o" if method.startswith("parallel") else "--s"
            ax.plot(*zip(*pts, strict=True), style, label=method, markersize=4)
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.axhline(0.2, color="grey", lw=0.8, ls=":")
        ax.set_xlabel("T (time steps)")
        ax.set_ylabel("gap = ANN − SNN accuracy (pp, floor 0.05)")
        ax.set_title(f"Fashion-MNIST, {model}")
        ax.legend(fontsize=7)
    return fig


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2000 test images, T=1,4, fewer methods")
    parser.add_argument("--serial-limit", type=int, default=2000, help="test images for serial baselines")
    parser.add_argument("--batches", type=int, default=16, help="calibration batches of 128 (<= 16)")
    parser.add_argument("--relu-epochs", type=int, default=2, help="epochs of the cached plain-ReLU CNN")
    parser.add_argument("--models", default="relu,qcfs", help="comma list of relu, qcfs (partial runs: own stem)")
    parser.add_argument("--spread-seeds", type=int, default=3, help="other calibration sets for the spread table")
    parser.add_argument("--only", default="", help="run only the methods whose label contains this (own stem)")
    args = parser.parse_args()
    common.setup(1)
    _, test = common.fashion_data()
    x = torch.stack([test[i][0] for i in range(len(test))])
    y = torch.tensor([int(test[i][1]) for i in range(len(test))])
    if args.quick:
        x, y = x[:2000], y[:2000]
    calib = common.calibration_batches(args.batches, 128)
    relu_ts, qcfs_ts = ((1, 4), (1, 4)) if args.quick else (RELU_TS, QCFS_TS)
    models = args.models.split(",")
    rows = []
    relu_base = dict(method="parallel", threshold_mode="percentile", percentile=99.9, per_channel=True)
    if "relu" in models:
        relu = common.trained_cnn("relu", epochs=args.relu_epochs)
        methods = {**PARALLEL, **{k: {**v, "method": "serial"} for k, v in SERIAL.items()}}
        methods = {k: v for k, v in methods.items() if args.only in k}
        rows += run_model(
            f"ReLU CNN ({args.relu_epochs} ep)", relu, relu_ts, methods, relu_base, calib, x, y, args.serial_limit
        )
    if "qcfs" in models:
        qcfs = common.trained_cnn("qcfs", levels=8)
        methods = {k: v for k, v in PARALLEL.items() if args.only in k}
        rows += run_model(
            "QCFS L=8 CNN", qcfs, qcfs_ts, methods, dict(method="parallel"), calib, x, y, args.serial_limit
        )
    stem = "calibration_quick" if args.quick else "calibration"
    if sorted(models) != ["qcfs", "relu"]:
        stem += "_" + "_".join(models)
    if args.only:
        stem += "_" + "".join(c if c.isalnum() else "_" for c in args.only)
    notes = (
        f"Fashion-MNIST test set ({len(x)} images; serial rows on the first {min(args.serial_limit, len(x))}, their "
        f"ann_acc is on the same subset). {len(calib)} calibration batches of 128 training images. Parallel rows: "
        "per-channel 99.9th-percentile thresholds for the ReLU CNN, trained θ for QCFS; serial rows: IF, reset by "
        "subtraction, v(0)=0. calib_s: seconds of error calibration (DA / Li), convert_s: whole convert call "
        "(thresholds + calibration), 1 CPU thread. Produced by `OMP_NUM_THREADS=1 .venv/bin/python "
        "benchmarks/calibration.py`."
    )
    paths = common.write_table(rows, stem, title="Calibration: training-free ReLU and QCFS at T < L", notes=notes)
    common.save_figure(plot(rows), stem)
    print("wrote", *paths.values())
    if args.spread_seeds > 0 and not args.quick:
        spread_rows = []
        if "relu" in models:
            label = f"ReLU CNN ({args.relu_epochs} ep)"
            spread_rows += spread(label, relu, SPREAD_TS["relu"], relu_base, args.spread_seeds, args.batches, x, y)
        if "qcfs" in models:
            base = dict(method="parallel")
            spread_rows += spread("QCFS L=8 CNN", qcfs, SPREAD_TS["qcfs"], base, args.spread_seeds, args.batches, x, y)
        notes = (
            f"DA match with and without weight refit, rerun on {args.spread_seeds} "
            f"other calibration sets ({args.batches} batches of 128 training images each, shuffles with seeds 1..."
            f"{args.spread_seeds}); gaps in pp on the full test set. Shows how much of a gap is the draw of the "
            "calibration images."
        )
        paths = common.write_table(
            spread_rows, stem + "_spread", title="Calibration: spread over calibration sets", notes=notes
        )
        print("wrote", *paths.values())


if __name__ == "__main__":
    main()
