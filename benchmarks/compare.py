"""Parallel conversion vs the low-latency baselines (serial IF, signed IF, SRP, COS) at equal latency.

Parallel conversion is run plain and with distribution-aware calibration (``parallel+da``: per-T calibration on
16 training batches of 128, the paper's full method); the winner column compares ``parallel+da``.

QCFS CNNs (L = 4 and 8) trained on Fashion-MNIST (cached by ``common.trained_cnn``); every method is read at every
T = 1..8 on the same test images (serial neurons are causal, so one run of presteps + 8 steps gives every T).
Writes, under ``benchmarks/results/``:

- ``compare_fashion_L{L}.{csv,md,json,png}``: every method at T = 1, 2, 4, 8 (accuracy vs T_total plot);
- ``compare_equal_latency.{csv,md,json}``: for every T_total ≤ 8, parallel at T = T_total against each
  baseline's best (presteps, T) with presteps + T = T_total, and which side wins.

Run: ``BENCH_THREADS=1 .venv/bin/python benchmarks/compare.py [--limit 2000] [--levels 4 8]``.
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from typing import Any

import common
from ann2snn.evaluate.compare import compare

BASELINES = {
    "serial": ["serial"],
    "signed": ["signed"],
    "srp": ["srp:1", "srp:2", "srp:4"],
    "cos": ["cos:1", "cos:2", "cos:4"],
}
TIMESTEPS = list(range(1, 9))
READ_T = (1, 2, 4, 8)


def best_at(report: Any, labels: list[str], total: int) -> tuple[float | None, str]:
    """Best accuracy over the runs of ``labels`` whose latency is ``total``, and which run it was."""
    best: tuple[float | None, str] = (None, "—")
    for row in report.rows:
        if row["method"] in labels and row["total_timesteps"] == total:
            if best[0] is None or row["accuracy"] > best[0]:
                best = (row["accuracy"], f"{row['method']} T={row['timesteps']}")
    return best


def subset(report: Any, ts: tuple[int, ...]) -> Any:
    """The same report restricted to read steps ``ts``."""
    rows = [r for r in report.rows if r["timesteps"] in ts]
    return dataclasses.replace(report, rows=rows, timesteps=list(ts))


def run_level(levels: int, loader: Any, epochs: int) -> tuple[list[dict[str, Any]], Any]:
    model = common.trained_cnn("qcfs", levels=levels, epochs=epochs)
    methods = ["parallel", "parallel+da"] + [m for ms in BASELINES.values() for m in ms]
    start = time.perf_counter()
    report = compare(model, loader, methods, TIMESTEPS, calibration_data=common.calibration_batches(16, 128))
    print(f"L={levels}: compared {len(methods)} methods in {time.perf_counter() - start:.0f} s")
    report.to_json(common.RESULTS / f"compare_fashion_L{levels}_all_T.json")  # every T = 1..8
    short = subset(report, READ_T)
    short.save(common.RESULTS, stem=f"compare_fashion_L{levels}")
    short.plot(common.RESULTS / f"compare_fashion_L{levels}.png", title=f"Fashion-MNIST QCFS CNN, L={levels}")
    rows = []
    for total in range(1, 9):
        row: dict[str, Any] = {"L": levels, "T_total": total, "ANN": report.ann_accuracy}
        row["parallel"] = report.accuracy("parallel", total)
        row["parallel+DA"] = report.accuracy("parallel+da", total)
        best_name, best_acc = "—", None
        for family, labels in BASELINES.items():
            acc, which = best_at(report, labels, total)
            row[family] = acc if acc is not None else "—"
            row[f"{family} run"] = which
            if acc is not None and (best_acc is None or acc > best_acc):
                best_name, best_acc = which, acc
        row["best baseline"] = best_name
        row["parallel+DA - best (pp)"] = None if best_acc is None else row["parallel+DA"] - best_acc
        row["winner"] = "—" if best_acc is None else ("parallel+DA" if row["parallel+DA"] >= best_acc else best_name)
        rows.append(row)
    return rows, report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=2000, help="test images (first N of the test set)")
    parser.add_argument("--levels", type=int, nargs="+", default=[4, 8])
    parser.add_argument("--epochs", type=int, default=4)
    args = parser.parse_args()
    common.setup()
    loader = common.test_loader(batch_size=500, limit=args.limit)
    rows: list[dict[str, Any]] = []
    for levels in args.levels:
        level_rows, _ = run_level(levels, loader, args.epochs)
        rows += level_rows
        write_summary(rows, args.limit)  # after every level, so finished levels are on disk


def write_summary(rows: list[dict[str, Any]], limit: int) -> None:
    columns = [
        "L",
        "T_total",
        "ANN",
        "parallel",
        "parallel+DA",
        "serial",
        "signed",
        "srp",
        "srp run",
        "cos",
        "cos run",
        "best baseline",
        "parallel+DA - best (pp)",
        "winner",
    ]
    notes = (
        f"Accuracy (%) on the first {limit} Fashion-MNIST test images. T_total = pre-simulation steps + T. "
        "srp/cos: best over presteps in {1, 2, 4} with presteps + T = T_total ('—': no such run). "
        "parallel and parallel+DA at T = T_total (DA: per-T calibration, 16 training batches of 128). "
        "Reproduce: `BENCH_THREADS=1 .venv/bin/python benchmarks/compare.py "
        f"--limit {limit}`."
    )
    paths = common.write_table(
        rows,
        "compare_equal_latency",
        title="Parallel conversion vs baselines at equal latency",
        notes=notes,
        columns=columns,
        meta={"limit": limit},
    )
    print(paths["md"].read_text(), flush=True)


if __name__ == "__main__":
    main()
