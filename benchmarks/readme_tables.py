"""Result tables in README.md and docs/*.md, rendered from the committed ``benchmarks/results/*.json`` files.

A table in a Markdown file is generated when it sits between two markers::

    <!-- results: NAME -->
    | ... |
    <!-- /results -->

NAME is one of :data:`RENDERERS` (a README summary of one benchmark) or ``copy:STEM`` / ``copy:STEM#N`` (the first /
N-th table of ``benchmarks/results/STEM.md`` verbatim). ``tests/unit/test_results_tables.py`` fails when a block
differs from what this script renders, so a number quoted in a table is the number the benchmark wrote.

Run from the repository root after a benchmark rewrote its results::

    .venv/bin/python benchmarks/readme_tables.py           # rewrite every block in README.md and docs/*.md
    .venv/bin/python benchmarks/readme_tables.py --check   # exit 1 and name the stale blocks
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ann2snn.io import atomic_write_text

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
MARKED = re.compile(r"(<!-- results: (?P<name>[^ ]+) -->\n)(?P<body>.*?)(<!-- /results -->)", flags=re.S)
MINUS = "\u2212"


def load(stem: str) -> list[dict[str, Any]]:
    return json.loads((RESULTS / f"{stem}.json").read_text())["rows"]


def num(x: float, signed: bool = False) -> str:
    """Two decimals, a real minus sign, ``+`` on request (and ``0.00`` for a zero, never ``−0.00``)."""
    text = f"{x:+.2f}" if signed else f"{x:.2f}"
    if text in ("-0.00", "+0.00"):
        text = "0.00"
    return text.replace("-", MINUS)


def bold(text: str, on: bool) -> str:
    return f"**{text}**" if on else text


def table(header: list[str], rows: list[list[str]], left: tuple[int, ...] = (0,)) -> str:
    """Markdown table; the columns in ``left`` left-aligned, the others right-aligned."""
    align = "|" + "|".join("---" if i in left else "---:" for i in range(len(header))) + "|\n"
    lines = ["| " + " | ".join(cells) + " |\n" for cells in (header, *rows)]
    return lines[0] + align + "".join(lines[1:])


# --- README: deep networks --------------------------------------------------------------------------------------

DEEP_MODELS = {  # key in deep.json -> (label, activation sites)
    "resnet20_relu": ("ResNet-20 ReLU, training-free", 19),
    "vgg16_relu": ("VGG-16 ReLU, training-free", 15),
    "resnet18_relu": ("ResNet-18 ReLU, training-free", 17),
    "resnet20_qcfs_L8": ("ResNet-20 QCFS L=8", 19),
    "vgg16_qcfs_L4": ("VGG-16 QCFS L=4", 15),
    "resnet18_qcfs_L4": ("ResNet-18 QCFS L=4", 17),
}
DEEP_PARALLEL = {"parallel": " (none)", "parallel + DA": " (DA)", "parallel + DA + refit": ""}


def deep() -> str:
    rows = load("deep")
    ts = sorted({r["T"] for r in rows})
    out = []
    for key, (label, sites) in DEEP_MODELS.items():
        mine = [r for r in rows if r["model"] == key]
        levels = int(key.split("_L")[1]) if "_L" in key else None
        ann = next(r["ann_acc"] for r in mine if r["method"] == "parallel")
        cells = [f"{label} ({sites}, {ann:.2f}%)"]
        for t in ts:
            if t == levels:
                exact = next(r for r in mine if r["T"] == t and r["method"] == "parallel, BN unfolded")
                cells.append(f"**{num(exact['gap_pp']).rstrip('0').rstrip('.')}** (T = L)")
                continue
            cands = [r for r in mine if r["T"] == t and r["method"] in DEEP_PARALLEL]
            best = min(cands, key=lambda r: r["gap_pp"]) if cands else None
            cells.append(num(best["gap_pp"]) + DEEP_PARALLEL[best["method"]] if best else "")
        out.append(cells)
    return table(["model (sites, ANN)", *[f"T={t}" for t in ts]], out)


# --- README: accuracy vs T --------------------------------------------------------------------------------------


def accuracy_vs_t() -> str:
    rows = load("accuracy_vs_T")
    ts = sorted({r["T"] for r in rows})
    out = []
    for levels in sorted({r["L"] for r in rows}):
        mine = {r["T"]: r for r in rows if r["L"] == levels}
        ann = mine[ts[0]]["ann"]
        for key, label in (("serial_if", "serial IF"), ("parallel", "parallel")):
            cells = [bold(num(mine[t][key]), key == "parallel" and t == levels) for t in ts]
            out.append([str(levels), num(ann), label, *cells])
    text = table(["L", "ANN", "", *[f"T={t}" for t in ts]], out, left=(2,))
    at_l = {lv: next(r for r in rows if r["L"] == lv and r["T"] == lv) for lv in sorted({r["L"] for r in rows})}
    levels = " / ".join(str(lv) for lv in at_l)
    folded = " / ".join(num(r["parallel"] - r["ann"], signed=True) for r in at_l.values())
    kept = " / ".join(
        num(r["parallel_bn_unfolded"] - r["ann"], signed=True) if r.get("parallel_bn_unfolded") is not None else "?"
        for r in at_l.values()
    )
    loss = " / ".join(num(r["ann"] - r["serial_if"]) for r in at_l.values())
    return text + (
        f"\nAt T = L (L = {levels}) the parallel SNN is {kept} pp from the QCFS ANN with BatchNorm kept "
        f"(`fold_batchnorm=False`) and {folded} pp with BatchNorm folded (the default: the folded conv rounds "
        f"differently in float32, which can move a pre-activation that sits on a level boundary); serial IF is "
        f"{loss} points below the ANN there.\n"
    )


def accuracy_seeds() -> str:
    """Mean [min, max] over training seeds (accuracy_vs_T.py --retrain): the spread of the trained-model claims."""
    rows = load("accuracy_vs_T_seeds_summary")

    def cell(r: dict[str, Any], key: str) -> str:
        return f"{num(r[key + '_mean'])} [{num(r[key + '_min'])}, {num(r[key + '_max'])}]"

    out = [
        [str(r["L"]), str(r["T"]), cell(r, "ann"), cell(r, "serial_minus_ann"), cell(r, "parallel_minus_ann")]
        for r in rows
    ]
    seeds = rows[0]["seeds"].replace(",", ", ")
    at_l = [r for r in rows if r["T"] == r["L"]]
    serial = "; ".join(
        f"{num(-r['serial_minus_ann_max'])} to {num(-r['serial_minus_ann_min'])} pp at L = {r['L']}" for r in at_l
    )
    worst = max(max(abs(r["parallel_minus_ann_min"]), abs(r["parallel_minus_ann_max"])) for r in at_l)
    head = ["L", "T", "ANN", "serial IF − ANN", "parallel − ANN"]
    return table(head, out, left=()) + (
        f"\nSeeds {seeds}; mean [min, max] in % and pp. At T = L the parallel SNN is within {num(worst)} pp of the "
        f"ANN on every seed (BatchNorm folded), while serial IF loses {serial}.\n"
    )


# --- README: calibration ----------------------------------------------------------------------------------------

CALIB_RELU = {  # README label -> benchmark label(s): one, or (T = 1, other T)
    "parallel, 99.9% per-channel θ": "parallel, no calibration",
    "parallel + DA `ema` (the paper's rule as its authors' code: conv sites only)": (
        "parallel + DA ema (paper), conv sites only"
    ),
    "parallel + DA `ema_theta` (EMA of the gap at amplitude θ)": "parallel + DA ema_theta",
    "parallel + DA `match`, no weight refit": "parallel + DA match, no refit",
    "parallel + DA (default: `match` + weight refit)": "parallel + DA match + weight refit",
}
CALIB_QCFS = {
    "parallel, no calibration": "parallel, no calibration",
    "parallel + DA (default: `match`, weight refit at T = 1)": (
        "parallel + DA match + weight refit",
        "parallel + DA match, no refit",
    ),
}
REFIT, NO_REFIT = "parallel + DA match + weight refit", "parallel + DA match, no refit"
CALIB_SERIAL = {
    "serial IF, Li MSE θ + potential corr.": "serial IF, MSE θ + potential corr. (Li)",
    "serial IF, 99.9% θ (Rueckauer)": "serial IF, 99.9% (Rueckauer)",
}


def calibration() -> str:
    rows = load("calibration")
    ts = sorted({r["T"] for r in rows})
    out: list[list[str]] = []

    def gaps(model: str, labels: dict[str, Any], first: str) -> None:
        mine = [r for r in rows if r["model"] == model]
        cell: dict[tuple[str, int], float] = {}
        for readme, bench in labels.items():
            for t in ts:
                name = bench if isinstance(bench, str) else bench[0 if t == 1 else 1]
                hit = [r["gap_pp"] for r in mine if r["method"] == name and r["T"] == t]
                if hit:
                    cell[readme, t] = hit[0]
        parallel = [k for k in labels if not k.startswith("serial")]
        for i, readme in enumerate(labels):
            cells = []
            for t in ts:
                if (readme, t) not in cell:
                    cells.append("")
                    continue
                column = [cell[k, t] for k in parallel if (k, t) in cell]
                cells.append(bold(num(cell[readme, t]), readme in parallel and cell[readme, t] == min(column)))
            out.append([first if i == 0 else first.split(" (")[0], readme, *cells])

    relu = next(r for r in rows if r["model"].startswith("ReLU") and r["method"] == "parallel, no calibration")
    serial = next(r for r in rows if r["model"] == relu["model"] and r["method"].startswith("serial"))
    qcfs = next(r for r in rows if r["model"].startswith("QCFS"))
    gaps(qcfs["model"], CALIB_QCFS, f"QCFS L=8 ({qcfs['ann_acc']:.2f}%)")
    at_l = next(r for r in load("accuracy_vs_T") if r["L"] == r["T"] == 8)  # the same checkpoint, T = L
    for cells in out:
        cells[2 + ts.index(8)] = f"{num(at_l['ann'] - at_l['parallel']).rstrip('0').rstrip('.')} (T = L)"
    gaps(relu["model"], CALIB_RELU, f"plain ReLU ({relu['ann_acc']:.2f}%)")
    n = serial["test_images"]
    gaps(relu["model"], CALIB_SERIAL, f"plain ReLU ({serial['ann_acc']:.2f}%, {n} imgs)")
    out[-1][0] = f"plain ReLU ({n} imgs)"
    gap = {(r["model"], r["method"], r["T"]): r["gap_pp"] for r in rows}

    def cut(model: str) -> str:
        before, after = gap[model, NO_REFIT, 1], gap[model, REFIT, 1]
        return f"{before / after:.1f}× ({num(before)} → {num(after)} pp)"

    return table(["model", "method", *[f"T={t}" for t in ts]], out, left=(0, 1)) + (
        f"\nAt T = 1 the weight refit cuts the gap of `match` {cut(relu['model'])} for the plain-ReLU CNN and "
        f"{cut(qcfs['model'])} for the QCFS one.\n"
    )


def calibration_estimators() -> str:
    """Every parallel method of the calibration benchmark at T = 1, 2, 4, both models (docs/calibration.md)."""
    rows = load("calibration")
    ts = (1, 2, 4)
    out = []
    for model in dict.fromkeys(r["model"] for r in rows):
        mine = [r for r in rows if r["model"] == model and r["method"].startswith("parallel")]
        ann = mine[0]["ann_acc"]
        for i, method in enumerate(dict.fromkeys(r["method"] for r in mine)):
            gap = {r["T"]: r["gap_pp"] for r in mine if r["method"] == method}
            label = f"{model} ({ann:.2f}%)" if i == 0 else model
            out.append([label, method, *[num(gap[t]) if t in gap else "" for t in ts]])
    return table(["model", "method", *[f"T={t}" for t in ts]], out, left=(0, 1))


CALIB_TARGETS = (  # (model prefix, T, target gap in pp or None); the targets set when DA calibration was built
    ("ReLU", 8, 0.2),
    ("ReLU", 4, 0.2),
    ("ReLU", 2, 1.0),
    ("ReLU", 1, 2.5),
    ("QCFS", 4, 0.5),
    ("QCFS", 2, 2.0),
    ("QCFS", 1, None),
)


def calibration_targets() -> str:
    """The default DA calibration against its targets: main calibration set and the mean over four sets."""
    main = {(r["model"], r["method"], r["T"]): r["gap_pp"] for r in load("calibration")}
    spread = {(r["model"], r["method"], r["T"]): r for r in load("calibration_spread")}

    def four(model: str, method: str, t: int) -> tuple[float, str]:
        m, sp = main[model, method, t], spread[model, method, t]
        mean = (m + sp["seeds"] * sp["gap_mean"]) / (1 + sp["seeds"])
        return mean, f"{num(mean)} ({num(min(m, sp['gap_min']))} to {num(max(m, sp['gap_max']))})"

    out = []
    for prefix, t, goal in CALIB_TARGETS:
        model = next(k[0] for k in main if k[0].startswith(prefix))
        default = REFIT if prefix == "ReLU" or t == 1 else NO_REFIT
        mean, text = four(model, default, t)
        plain = "(same: no refit)" if default == NO_REFIT else four(model, NO_REFIT, t)[1]
        best = min(main[model, default, t], spread[model, default, t]["gap_min"])
        if goal is None:
            verdict = ""
        elif mean <= goal:
            verdict = "met"
        elif best <= goal:
            verdict = "missed on average, met on some sets"
        else:
            verdict = "missed"
        label = f"{'training-free ReLU' if prefix == 'ReLU' else 'QCFS L=8'}, T = {t}: " + (
            f"≤ {goal}" if goal is not None else "(no target)"
        )
        out.append([label, num(main[model, default, t]), text, plain, verdict])
    head = ["target (gap, pp)", "default, main set", "default, mean of four sets (range)", "`match` without refit"]
    return table([*head, ""], out, left=(0, 4))


# --- README: low-latency baselines at equal latency -------------------------------------------------------------

COMPARE_TS = (1, 2, 4, 6, 8)


def run_label(run: str, t_total: int) -> str:
    """'srp:1 T=5' -> 'SRP τ=1, T=5'; 'signed T=2' -> 'signed IF'."""
    method, t = run.split(" T=")
    base, _, k = method.partition(":")
    name = {"serial": "serial", "signed": "signed IF", "srp": f"SRP τ={k}", "cos": f"COS ρ={k}"}[base]
    return name if int(t) == t_total else f"{name}, T={t}"


def compare() -> str:
    rows = load("compare_equal_latency")
    out = []
    ahead = tie = 0
    behind: list[float] = []
    for r in rows:
        best_run = r["best baseline"]
        kind = best_run.split(" ")[0].split(":")[0]
        best = r[kind]
        diff = r["parallel+DA"] - best
        ahead += diff > 1e-9
        tie += abs(diff) <= 1e-9
        if diff < -1e-9:
            behind.append(-diff)
        if r["T_total"] not in COMPARE_TS:
            continue
        cells = [str(r["L"]), str(r["T_total"]), num(r["ANN"]), num(r["parallel"])]
        cells.append(bold(num(r["parallel+DA"]), diff >= -1e-9))
        cells.append(f"{bold(num(best), diff < -1e-9)} ({run_label(best_run, r['T_total'])})")
        cells.append(num(diff, signed=True))
        out.append(cells)
    head = ["L", "T_total", "ANN", "parallel", "parallel+DA", "best baseline (its run)", "parallel+DA − best (pp)"]
    text = table(head, out, left=(5,))
    limit = json.loads((RESULTS / "compare_equal_latency.json").read_text())["limit"]
    worst = f"; the largest loss is {num(max(behind))} pp ({round(max(behind) * limit / 100)} of {limit} images)"
    return text + (
        f"\nOver all {len(rows)} points T_total = 1…{max(r['T_total'] for r in rows)} (both L), parallel + DA is "
        f"ahead at {ahead}, level at {tie} and behind at {len(behind)}{worst if behind else ''}.\n"
    )


# --- README: robustness ----------------------------------------------------------------------------------------


def robustness() -> str:
    """The robustness sentence from robustness_fashion.json and leak_placement.json."""
    rows = {(r["model"], str(r["T"])): r for r in load("robustness_fashion")}
    step_ann, step = rows["StepReLU ANN", "—"], rows["StepReLU SNN, no leak", "8"]
    qcfs_ann, qcfs = rows["QCFS ANN", "—"], rows["QCFS SNN (parallel, L=8)", "8"]
    leak = next(r for (m, t), r in rows.items() if m.startswith("StepReLU SNN, leak λ=0.98") and t == "8")
    place = {r["setting"]: r for r in load("leak_placement")}
    none, first = place["StepReLU SNN, no leak"], place["StepReLU, first layer λ=0.97"]
    gain = place["StepReLU, first layer gain 0.85 (control)"]

    def pair(r: dict[str, Any], a: str = "clean", b: str = "sp:0.05") -> str:
        return f"{r[a]:.2f} / {r[b]:.2f}%"

    def delta(r: dict[str, Any], key: str) -> str:
        return num(r[key] - none[key], signed=True)

    return (
        f"clean / salt-and-pepper p = 0.05 accuracy of the StepReLU SNN at T = n = 8: {pair(step)} (its ANN "
        f"{pair(step_ann)}); of the QCFS parallel SNN at T = L = 8: {pair(qcfs)} (its ANN {pair(qcfs_ann)}). A "
        f"leak λ = 0.98 on every layer changes the StepReLU SNN's noisy accuracy by "
        f"{num(leak['sp:0.05'] - step['sp:0.05'], signed=True)} pp and its clean accuracy by "
        f"{num(leak['clean'] - step['clean'], signed=True)} pp. On 2 000 held-out images (`leak_placement.py`), "
        f"λ = 0.97 on the first layer only changes noisy accuracy by {delta(first, 'report sp:0.05')} pp (clean "
        f"{delta(first, 'report clean')} pp), a no-leak first-layer gain of 0.85 by {delta(gain, 'report sp:0.05')} "
        f"pp (clean {delta(gain, 'report clean')} pp).\n"
    )


# --- README: speed ---------------------------------------------------------------------------------------------


def speed() -> str:
    """One sentence of batch-128 ratios from speed.json (ranges over models and T)."""
    rows = [r for r in load("speed") if r["batch"] == 128]
    models = " and ".join(dict.fromkeys(r["model"] for r in rows))

    def span(method: str, key: str, t: int | None = None, digits: int = 2) -> str:
        vals = [r[key] for r in rows if r["method"] == method and (t is None or r["T"] == t)]
        return f"{min(vals):.{digits}f}–{max(vals):.{digits}f}"

    ts = sorted({r["T"] for r in rows})
    lo, hi = span("rate", "speedup_vs_serial", ts[0], 1), span("rate", "speedup_vs_serial", ts[-1], 1)
    return (
        f"rate mode runs at {span('rate', 'vs_ann_throughput')}× the ANN's throughput (it runs the BN-folded graph), "
        f"spike mode takes {span('spike', 'vs_T_ann_time')}× the time of T ANN forwards, and rate mode is "
        f"{lo}× (T = {ts[0]}) to {hi}× (T = {ts[-1]}) faster than serial IF simulation, for {models}; spike "
        f"mode's peak memory stays at {span('spike', 'peak_mem_MiB', digits=0)} MiB (chunked) against "
        f"{span('serial', 'peak_mem_MiB', digits=0)} MiB for serial IF.\n"
    )


RENDERERS: dict[str, Callable[[], str]] = {
    "deep": deep,
    "accuracy_vs_T": accuracy_vs_t,
    "accuracy_seeds": accuracy_seeds,
    "calibration": calibration,
    "calibration_estimators": calibration_estimators,
    "calibration_targets": calibration_targets,
    "compare": compare,
    "speed": speed,
    "robustness": robustness,
}


README_BLOCKS = (
    "deep",
    "accuracy_vs_T",
    "accuracy_seeds",
    "calibration",
    "compare",
    "speed",
    "robustness",
)  # each must appear in README.md


def copy(spec: str) -> str:
    """``STEM`` or ``STEM#N``: the N-th (1-based) table of results/STEM.md."""
    stem, _, index = spec.partition("#")
    text = (RESULTS / f"{stem}.md").read_text()
    tables = re.findall(r"(?:^\|.*\|\n)+", text, flags=re.M)
    return tables[int(index or 1) - 1]


def render(name: str) -> str:
    if name.startswith("copy:"):
        return copy(name[5:])
    if name not in RENDERERS:
        raise SystemExit(f"unknown results block {name!r}: use one of {sorted(RENDERERS)} or copy:STEM[#N]")
    return RENDERERS[name]()


def documents() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def stale(path: Path) -> list[str]:
    """Names of the blocks in ``path`` that differ from what they render to."""
    return [m["name"] for m in MARKED.finditer(path.read_text()) if m["body"] != render(m["name"])]


def rewrite(path: Path) -> bool:
    text = path.read_text()
    new = MARKED.sub(lambda m: m[1] + render(m["name"]) + m[4], text)
    if new != text:
        atomic_write_text(path, new)
    return new != text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only report stale blocks (exit 1 if any)")
    args = parser.parse_args(argv)
    bad = 0
    for path in documents():
        if args.check:
            for name in stale(path):
                print(f"{path.relative_to(ROOT)}: block {name!r} differs from benchmarks/results")
                bad += 1
        elif rewrite(path):
            print("rewrote", path.relative_to(ROOT))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
