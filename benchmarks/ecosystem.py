"""Spike statistics, SOPs and energy vs T on Fashion-MNIST, full HTML/Markdown reports, and a NIR round trip.

Run: ``OMP_NUM_THREADS=1 .venv/bin/python benchmarks/ecosystem.py [--limit 1000]``. Writes
``results/ecosystem_cost.{csv,md,json}`` and full reports under ``results/ecosystem/<method>/``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import ann2snn as a2s  # noqa: E402
import common  # noqa: E402
from ann2snn.evaluate.cost import spike_cost  # noqa: E402
from ann2snn.evaluate.html import write_full_report  # noqa: E402
from ann2snn.export.nir import export_nir  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--limit", type=int, default=1000, help="test images")
    parser.add_argument("--levels", type=int, default=8)
    args = parser.parse_args()
    common.setup(1)
    ann = common.trained_cnn("qcfs", levels=args.levels).eval()
    loader = common.test_loader(250, limit=args.limit)
    sample = next(iter(loader))[0]
    ts = (1, 2, 4, 8)
    rows = []
    for method in ("parallel", "serial"):
        snn = a2s.convert(ann, a2s.ConversionConfig(method=method, timesteps=max(ts)))
        start = time.perf_counter()
        report = a2s.evaluate(ann, snn, loader, ts, source=common.source(ann))
        write_full_report(report, ann, snn, sample, common.RESULTS / "ecosystem" / method)
        for t in ts:
            cost = spike_cost(snn, sample, t, ann)
            rows.append(
                {
                    "method": method,
                    "T": t,
                    "snn_acc": report.snn_accuracy[t],
                    "ann_acc": report.ann_accuracy,
                    "spikes/img": sum(r["spikes"] for r in cost.layers),
                    "SOPs/img (M)": cost.sops / 1e6,
                    "SNN MACs/img (M)": cost.snn_macs / 1e6,
                    "ANN MACs/img (M)": (cost.ann_macs or 0) / 1e6,
                    "SNN energy (uJ)": cost.snn_energy_pj / 1e6,
                    "ANN energy (uJ)": (cost.ann_energy_pj or 0) / 1e6,
                    "SNN/ANN energy": cost.snn_energy_pj / (cost.ann_energy_pj or 1),
                }
            )
        print(f"{method}: report in {time.perf_counter() - start:.0f} s")
    notes = (
        f"QCFS L={args.levels} cnn, first {args.limit} Fashion-MNIST test images; SOPs/energy on the first "
        f"{len(sample)} images. 0.9 pJ/AC, 4.6 pJ/MAC (45 nm); the analog-input conv costs T x its MACs."
    )
    common.write_table(rows, "ecosystem_cost", title="Spikes, synaptic operations and energy vs T", notes=notes)
    # NIR round trip of the serial network (reset by subtraction, v(0)=θ/2 -> needs the metadata extension).
    snn = a2s.convert(ann, a2s.ConversionConfig(method="serial", timesteps=8))
    graph = export_nir(snn, common.RESULTS / "ecosystem" / "cnn_serial.nir", (1, 28, 28), extensions=True)
    print(f"NIR: {len(graph.nodes)} nodes, {len(graph.edges)} edges")


if __name__ == "__main__":
    main()
