"""Deep networks at 1–16 time steps: ResNet-20, VGG-16 and ResNet-18 on Fashion-MNIST padded to 32x32.

Each model is converted from two ANNs (``deep_models.py``, committed checkpoints): a plain-ReLU ANN (the
training-free path: per-channel 99.9th-percentile thresholds, then DA calibration) and a QCFS ANN (L = 8 for
ResNet-20, L = 4 for the others). Rows per T: parallel uncalibrated, DA ``match`` without and with weight refit,
and the serial baselines (serial IF, SRP, COS for QCFS; Rueckauer 99.9% and Li et al. MSE θ + potential
correction for ReLU). Parallel rows are scored on the full test set (rate mode = spike mode's levels), serial rows
on the first ``--serial-limit`` test images (they step in time). Every row records the conversion and calibration
seconds, the peak memory the conversion added, and the calibration cost in ANN-forward equivalents (calibration
seconds over the seconds of one ANN forward of the calibration images, measured in the same run).

Run from the repository root (finished rows are cached in ``benchmarks/results/cache/deep_rows.json``, so an
interrupted run continues where it stopped; ``--fresh`` ignores the cache)::

    .venv/bin/python benchmarks/deep.py                       # all models, writes results/deep.*
    .venv/bin/python benchmarks/deep.py --models resnet20 --ts 1,2,4
"""

from __future__ import annotations

import argparse
import json
import os
import threading
import time
from typing import Any

import torch
from torch import nn

import ann2snn as a2s
import common
from calibration import accuracy  # ANN, or SNN in rate (parallel) / spike (serial) mode
from deep_models import VARIANTS, padded_fashion, trained

TS = (1, 2, 4, 8, 16)
ROW_CACHE = common.CACHE / "deep_rows.json"
RELU_BASE = dict(method="parallel", threshold_mode="percentile", percentile=99.9, per_channel=True)
PARALLEL = {  # label -> ConversionConfig fields on top of the model's base
    "parallel": dict(),
    "parallel + DA": dict(calibration="da", estimator="match", weight_refit=False),
    "parallel + DA + refit": dict(calibration="da", estimator="match", weight_refit=True),
}
SERIAL_QCFS = {
    "serial IF": dict(method="serial"),
    "SRP (τ=4)": dict(method="srp", presteps=4),
    "COS (ρ=4)": dict(method="cos", presteps=4),
}
SERIAL_RELU = {
    "serial IF, 99.9% (Rueckauer)": dict(method="serial", threshold_mode="percentile", per_channel=False, v_init=0.0),
    "serial IF, Li MSE θ + potential": dict(
        method="serial", threshold_mode="mse", per_channel=True, v_init=0.0, calibration="li_potential"
    ),
}
# targets: gap = ANN − SNN (pp) at T; QCFS: exact at T = L, DA at T = L/2 and T = 1
RELU_TARGETS = {8: 0.3, 4: 1.0, 2: 3.0, 1: 8.0}


class PeakRSS:
    """Peak resident memory above the starting level while the block runs (sampled every 10 ms; CUDA: the
    allocator's peak)."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.peak_mb = 0.0
        self._stop = threading.Event()

    @staticmethod
    def _rss() -> int:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

    def _sample(self, base: int) -> None:
        peak = base
        while not self._stop.wait(0.01):
            peak = max(peak, self._rss())
        self.peak_mb = (max(peak, self._rss()) - base) / 2**20

    def __enter__(self) -> PeakRSS:
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)
            self._base = torch.cuda.memory_allocated(self.device)
        else:
            self._thread = threading.Thread(target=self._sample, args=(self._rss(),), daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.device.type == "cuda":
            self.peak_mb = (torch.cuda.max_memory_allocated(self.device) - self._base) / 2**20
        else:
            self._stop.set()
            self._thread.join()


def forward_seconds(model: nn.Module, batches: list[torch.Tensor]) -> float:
    """Seconds of one ANN forward over the calibration batches (best of 2)."""
    best = float("inf")
    with torch.no_grad():
        for _ in range(2):
            start = time.perf_counter()
            for xb in batches:
                model(xb)
            best = min(best, time.perf_counter() - start)
    return best


def methods_for(activation: str, levels: int | None, T: int) -> dict[str, dict[str, Any]]:
    base = dict(method="parallel") if activation == "qcfs" else RELU_BASE
    out = {label: {**base, **fields} for label, fields in PARALLEL.items()}
    if activation == "qcfs" and T == levels:
        del out["parallel + DA"], out["parallel + DA + refit"]  # lossless without calibration
        out["parallel, BN unfolded"] = {**base, "fold_batchnorm": False}  # the ANN's own float expression
    serial = SERIAL_QCFS if activation == "qcfs" else SERIAL_RELU
    return {**out, **serial}


def run_row(
    key: str,
    ann: nn.Module,
    label: str,
    fields: dict[str, Any],
    T: int,
    data: dict[str, Any],
    ann_acc: dict[str, float],
) -> dict[str, Any]:
    cfg = a2s.ConversionConfig(**{**fields, "timesteps": T, "calibration_batches": len(data["calib"])})
    device = data["device"]
    with PeakRSS(device) as mem:
        start = time.perf_counter()
        snn = a2s.convert(ann, cfg, calibration_data=data["calib"], max_batches=len(data["calib"]))
        seconds = time.perf_counter() - start
    serial = snn.execution != "parallel"
    n = data["serial_limit"] if serial else len(data["x"])
    acc = accuracy(snn, data["x"][:n], data["y"][:n], T)
    ref = ann_acc["sub"] if serial else ann_acc["full"]
    calib_s = float(getattr(snn, "calibration_seconds", 0.0) or 0.0)
    return dict(
        model=key,
        method=label,
        T=T,
        T_total=T + cfg.presteps,
        ann_acc=round(ref, 2),
        snn_acc=round(acc, 2),
        gap_pp=round(ref - acc, 2),
        convert_s=round(seconds, 1),
        calib_s=round(calib_s, 1),
        ann_fwd_equiv=round(calib_s / data["fwd_s"][key], 1) if calib_s else 0.0,
        peak_mb=round(mem.peak_mb, 0),
        test_images=n,
    )


def load_cache(fresh: bool) -> dict[str, dict[str, Any]]:
    if fresh or not ROW_CACHE.exists():
        return {}
    return json.loads(ROW_CACHE.read_text())


def save_cache(cache: dict[str, dict[str, Any]]) -> None:
    ROW_CACHE.parent.mkdir(parents=True, exist_ok=True)
    tmp = ROW_CACHE.with_suffix(".tmp")
    tmp.write_text(json.dumps(cache, indent=1))
    tmp.replace(ROW_CACHE)


def targets(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One line per target: the best binary-spike parallel row against the target gap."""
    out = []
    best: dict[tuple[str, int], dict[str, Any]] = {}
    for r in rows:
        if r["method"].startswith("parallel"):
            k = (r["model"], r["T"])
            if k not in best or r["gap_pp"] < best[k]["gap_pp"]:
                best[k] = r
    for (model, T), r in best.items():
        goal = None
        if "_relu" in model and not model.startswith("resnet18"):
            goal = RELU_TARGETS.get(T)
        elif "_qcfs" in model:
            levels = int(model.split("_L")[1].split("_")[0])
            goal = {levels: 0.0, levels // 2: 0.5, 1: 3.0}.get(T)
        if goal is not None:
            out.append(
                dict(
                    model=model,
                    T=T,
                    target_gap=goal,
                    best_method=r["method"],
                    gap_pp=r["gap_pp"],
                    met=r["gap_pp"] <= goal,
                )
            )
    return out


def plot(rows: list[dict[str, Any]]) -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    models = list(dict.fromkeys(r["model"] for r in rows))
    cols = 2
    nrows = (len(models) + cols - 1) // cols
    fig, axes = plt.subplots(nrows, cols, figsize=(13, 4.2 * nrows), squeeze=False)
    for ax, model in zip(axes.flat, models, strict=False):
        sub = [r for r in rows if r["model"] == model]
        ts = sorted({r["T"] for r in sub})
        for method in dict.fromkeys(r["method"] for r in sub):
            pts = sorted((r["T"], r["snn_acc"]) for r in sub if r["method"] == method)
            style = "-o" if method.startswith("parallel") else "--s"
            ax.plot(*zip(*pts, strict=True), style, label=method, markersize=4)
        ax.axhline(sub[0]["ann_acc"], color="black", lw=0.8, ls=":", label=f"ANN {sub[0]['ann_acc']:.2f}")
        ax.set_xscale("log", base=2)
        ax.set_xticks(ts, [str(t) for t in ts])
        ax.set_xlabel("T (read time steps)")
        ax.set_ylabel("test accuracy (%)")
        ax.set_ylim(0, 100)
        ax.set_title(model)
        ax.legend(fontsize=7, loc="lower right")
    for ax in list(axes.flat)[len(models) :]:
        ax.set_visible(False)
    fig.tight_layout()
    return fig


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="resnet20,vgg16,resnet18", help="comma list of architectures")
    parser.add_argument("--activations", default="relu,qcfs", help="comma list: relu, qcfs")
    parser.add_argument("--ts", default=",".join(map(str, TS)), help="comma list of T")
    parser.add_argument("--methods", default=None, help="only methods whose label starts with one of these (comma)")
    parser.add_argument("--batches", type=int, default=16, help="calibration batches of 128 (<= 16)")
    parser.add_argument("--serial-limit", type=int, default=1000, help="test images for serial rows")
    parser.add_argument("--limit", type=int, default=None, help="test images for parallel rows (default: all)")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--fresh", action="store_true", help="ignore cached rows")
    parser.add_argument("--cached-only", action="store_true", help="write the tables from cached rows only")
    args = parser.parse_args()
    common.setup(args.threads)
    device = torch.device(args.device)
    test = padded_fashion("test", limit=args.limit)
    x, y = (t.to(device) for t in test.tensors)
    train = padded_fashion("train")
    gen = torch.Generator().manual_seed(0)
    order = torch.randperm(len(train), generator=gen)[: 128 * args.batches]
    calib = [train.tensors[0][order[i : i + 128]].to(device) for i in range(0, len(order), 128)]
    data: dict[str, Any] = dict(x=x, y=y, calib=calib, device=device, serial_limit=args.serial_limit, fwd_s={})
    ts = [int(t) for t in args.ts.split(",")]
    cache = load_cache(args.fresh)
    rows = []
    for arch, activation, levels in VARIANTS:
        if arch not in args.models.split(",") or activation not in args.activations.split(","):
            continue
        key = f"{arch}_{activation}" + (f"_L{levels}" if levels else "")
        ann = trained(arch, activation, levels).to(device).eval()
        data["fwd_s"][key] = forward_seconds(ann, calib)
        ann_acc = {"full": accuracy(ann, x, y), "sub": accuracy(ann, x[: args.serial_limit], y[: args.serial_limit])}
        print(f"{key}: ANN {ann_acc['full']:.2f}% (one forward of the calibration set: {data['fwd_s'][key]:.2f} s)")
        for T in ts:
            for label, fields in methods_for(activation, levels, T).items():
                if args.methods and not any(label.startswith(m) for m in args.methods.split(",")):
                    continue
                row_key = f"{key}|{label}|T={T}|n={len(x)}|b={len(calib)}|s={args.serial_limit}"
                if row_key not in cache and args.cached_only:
                    continue
                if row_key not in cache:
                    cache[row_key] = run_row(key, ann, label, fields, T, data, ann_acc)
                    save_cache(cache)
                r = cache[row_key]
                rows.append(r)
                print(
                    f"{key:>16} T={T:<2} {label:<34} {r['snn_acc']:6.2f}% gap {r['gap_pp']:6.2f} pp "
                    f"calib {r['calib_s']:6.1f} s ({r['ann_fwd_equiv']} fwd-eq) +{r['peak_mb']:.0f} MB",
                    flush=True,
                )
    notes = (
        f"Fashion-MNIST padded to 32x32; parallel rows on {len(x)} test images (rate mode), serial rows on the "
        f"first {args.serial_limit} (ann_acc on the same subset); {len(calib)} calibration batches of 128 training "
        "images, no labels. ReLU models: per-channel 99.9th-percentile θ; QCFS: trained θ. DA = estimator "
        "'match'. T_total = presteps + T for SRP/COS. calib_s: DA / Li calibration seconds; ann_fwd_equiv: "
        "calib_s over one ANN forward of the calibration images; peak_mb: memory the conversion added (RSS "
        f"sampled every 10 ms; CUDA: allocator peak). Device {device}. Produced by "
        "`.venv/bin/python benchmarks/deep.py`."
    )
    paths = common.write_table(rows, "deep", title="Deep networks: accuracy vs T", notes=notes)
    common.save_figure(plot(rows), "deep")
    goals = targets(rows)
    if goals:
        common.write_table(goals, "deep_targets", title="Deep networks: targets (gap = ANN − SNN, pp)", notes=notes)
    print("wrote", *paths.values())


if __name__ == "__main__":
    main()
