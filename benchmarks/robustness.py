"""Robustness of StepReLU SNNs with and without leak vs the QCFS parallel SNN, on Fashion-MNIST.

Rows: the StepReLU ANN (step 0.25, n = 8), its SNN (method="steprelu") without leak, with the exponential leak λ and
with the linear leak δ picked by ``choose_leak``, the QCFS ANN (L = 8) and its parallel SNN, at T = 1, 2, 4, 8.
Columns: clean, salt-and-pepper p = 0.02/0.05/0.1, Gaussian σ = 0.1/0.2, FGSM ε = 0.02/0.05 (gradients from each
SNN's source ANN). Leaks are chosen on the first ``--val`` test images (salt-and-pepper p = 0.05, at most 0.5 pp of
clean accuracy lost there); accuracies are reported on the next ``--limit`` test images, disjoint from them.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/robustness.py --val 1000 --limit 2000
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch
from torch.utils.data import Subset

sys.path.insert(0, str(Path(__file__).resolve().parent))

import ann2snn as a2s  # noqa: E402
import common  # noqa: E402
from ann2snn.evaluate.leak import choose_leak  # noqa: E402
from ann2snn.evaluate.robustness import evaluate_robustness  # noqa: E402
from ann2snn.transforms.steprelu import set_leak  # noqa: E402

ATTACKS = "sp:0.02,sp:0.05,sp:0.1,gauss:0.1,gauss:0.2,fgsm:0.02,fgsm:0.05"
TIMESTEPS = (1, 2, 4, 8)
STEP = {"step": 0.25, "steps": 8}
LAMBDAS = (1.0, 0.98, 0.95, 0.9, 0.8)
DELTAS = (0.0, 0.01, 0.02, 0.05, 0.1)
FALLBACK_LAMBDA, FALLBACK_DELTA = 0.98, 0.02


def _rows(result, label: str, with_ann: bool) -> list[dict]:
    out: dict[tuple, dict] = {}
    for r in result.rows:
        if r["model"] == "ann" and not with_ann:
            continue
        name = label if r["model"] == "snn" else label.split(" SNN")[0] + " ANN"
        key = (name, r["timesteps"])
        row = out.setdefault(key, {"model": name, "T": "—" if r["timesteps"] is None else r["timesteps"]})
        row[r["attack"]] = r["accuracy"]
    return list(out.values())


def _plot(rows: list[dict], stem: str) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(14, 4), sharey=False)
    for ax, col in zip(axes, ("clean", "sp:0.05", "fgsm:0.02"), strict=True):
        for r_model in dict.fromkeys(r["model"] for r in rows):
            pts = [(r["T"], r[col]) for r in rows if r["model"] == r_model]
            if pts and pts[0][0] == "—":
                ax.axhline(pts[0][1], ls="--", lw=1, label=r_model, color="grey" if "QCFS" in r_model else "black")
            else:
                ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=r_model)
        ax.set_xscale("log", base=2)
        ax.set_xticks(list(TIMESTEPS), [str(t) for t in TIMESTEPS])
        ax.set_xlabel("T")
        ax.set_title(col)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("accuracy (%)")
    axes[-1].legend(fontsize=7)
    fig.suptitle("Fashion-MNIST: accuracy vs T, clean and corrupted")
    return common.save_figure(fig, stem)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--val", type=int, default=1000, help="test images used to choose the leak")
    parser.add_argument("--limit", type=int, default=2000, help="test images evaluated (after the --val ones)")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    common.setup(1)
    start = time.perf_counter()
    step_ann = common.trained_cnn("steprelu", epochs=args.epochs, **STEP).eval()
    qcfs_ann = common.trained_cnn("qcfs", levels=8, epochs=args.epochs).eval()
    test = common.fashion_data()[1]
    n = len(test)
    val = a2s.make_loader(Subset(test, range(0, min(args.val, n))), 500, shuffle=False)
    held = Subset(test, range(args.val, min(args.val + args.limit, n)))
    loader = a2s.make_loader(held, 500, shuffle=False)

    snn = a2s.convert(step_ann, a2s.ConversionConfig(method="steprelu", timesteps=STEP["steps"]))
    lam = choose_leak(step_ann, snn, val, LAMBDAS, noise="sp:0.05", clean_loader=val, max_clean_drop=0.5, seed=99)
    dlt = choose_leak(
        step_ann, snn, val, DELTAS, leak_mode="linear", noise="sp:0.05", clean_loader=val, max_clean_drop=0.5, seed=99
    )
    print("leak choice (exponential):", lam.to_dict())
    print("leak choice (linear):", dlt.to_dict())
    qsnn = a2s.convert(qcfs_ann, a2s.ConversionConfig(method="parallel", timesteps=8))
    # When validation picks no leak, show the mildest real leak instead (labelled as not chosen).
    lam_v = lam.leak if lam.leak != 1.0 else FALLBACK_LAMBDA
    dlt_v = dlt.leak if dlt.leak != 0.0 else FALLBACK_DELTA
    lam_label = f"StepReLU SNN, leak λ={lam_v:g}" + ("" if lam.leak != 1.0 else " (not chosen)")
    dlt_label = f"StepReLU SNN, linear leak δ={dlt_v:g}" + ("" if dlt.leak != 0.0 else " (not chosen)")
    runs = [
        ("StepReLU SNN, no leak", snn, step_ann, True),
        (lam_label, set_leak(snn, lam_v), step_ann, False),
        (dlt_label, set_leak(snn, (1.0, dlt_v)), step_ann, False),
        ("QCFS SNN (parallel, L=8)", qsnn, qcfs_ann, True),
    ]
    rows: list[dict] = []
    for label, model, ann, with_ann in runs:
        t0 = time.perf_counter()
        res = evaluate_robustness(model, loader, ATTACKS, TIMESTEPS, ann=ann, seed=args.seed, progress=False)
        rows += _rows(res, label, with_ann)
        print(f"{label}: {time.perf_counter() - t0:.0f} s")
    rows.sort(key=lambda r: (0 if "StepReLU" in r["model"] else 1, r["T"] != "—"))
    cols = ["model", "T", "clean", *ATTACKS.split(",")]
    by = {(r["model"], r["T"]): r for r in rows}
    base, leak_row, lin_row = by[("StepReLU SNN, no leak", 8)], by[(lam_label, 8)], by[(dlt_label, 8)]
    notes = (
        f"Accuracy (%) on Fashion-MNIST test images {args.val}..{args.val + len(held) - 1} ({len(held)} images); "
        f"leaks chosen on test images 0..{args.val - 1} under salt-and-pepper p=0.05 with at most 0.5 pp clean "
        f"cost there (λ candidates {LAMBDAS}: noisy acc {lam.noisy_accuracy}; δ candidates {DELTAS}: noisy acc "
        f"{dlt.noisy_accuracy}). FGSM gradients come from each SNN's source ANN (transfer attack). "
        f"Chosen: λ={lam.leak:g}, δ={dlt.leak:g}. Target check at T=8: λ={lam_v:g} changes sp:0.05 accuracy by "
        f"{leak_row['sp:0.05'] - base['sp:0.05']:+.2f} pp and clean by {leak_row['clean'] - base['clean']:+.2f} pp; "
        f"δ={dlt_v:g} by {lin_row['sp:0.05'] - base['sp:0.05']:+.2f} pp / "
        f"{lin_row['clean'] - base['clean']:+.2f} pp."
    )
    paths = common.write_table(
        rows,
        "robustness_fashion",
        title="Robustness on Fashion-MNIST: StepReLU SNN (leak off/on) vs QCFS parallel SNN",
        notes=notes,
        columns=cols,
        meta={"leak_exponential": lam.to_dict(), "leak_linear": dlt.to_dict(), "seconds": time.perf_counter() - start},
    )
    paths["png"] = _plot(rows, "robustness_fashion")
    print(common.markdown_table(rows, cols))
    print(notes)
    print("wrote", ", ".join(str(p) for p in paths.values()))


if __name__ == "__main__":
    torch.set_num_threads(1)
    main()
