"""ann2snn vs the SpikingJelly reference on the same trained plain-ReLU "cnn" (speed ratio taken in one session).

Run from the repository root with the project venv, right after (or via ``--sj-python``, as part of) the
SpikingJelly reference script, so both sides are timed under the same machine load::

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/spikingjelly_compare.py --sj-python /tmp/sjvenv/bin/python

``--sj-python`` first runs ``benchmarks/spikingjelly_reference.py`` with that interpreter (it writes
``results/spikingjelly_reference.json``); without it the existing JSON is read. The ann2snn side converts the
same checkpoint (``cache/cnn_relu_e2_s0``) with ``method="parallel"``, layer-wise max thresholds from the same
1024 training images (the analogue of SpikingJelly's ``mode="Max"``) and times ``simulate(..., mode="rate")`` and
``mode="spike"`` with the same timing loop. Writes ``benchmarks/results/spikingjelly_compare.{csv,md,json}``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import ann2snn as a2s  # noqa: E402
import common  # noqa: E402
from spikingjelly_reference import time_call  # noqa: E402  (same timing loop on both sides)

SJ_SCRIPT = Path(__file__).resolve().parent / "spikingjelly_reference.py"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sj-python", default=None, help="interpreter with spikingjelly; runs the reference first")
    parser.add_argument("--timesteps", type=int, nargs="+", default=[4, 8, 16, 32])
    parser.add_argument("--batches", type=int, nargs="+", default=[128, 1])
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--test-limit", type=int, default=2000)
    parser.add_argument("--calib", type=int, default=1024)
    args = parser.parse_args(argv)
    common.setup(1)
    ann = common.trained_cnn("relu", epochs=2).eval()  # trains and caches it if missing; the reference reads it
    if args.sj_python:
        cmd = [args.sj_python, str(SJ_SCRIPT), "--reps", str(args.reps), "--test-limit", str(args.test_limit)]
        cmd += ["--calib", str(args.calib), "--timesteps", *map(str, args.timesteps)]
        cmd += ["--batches", *map(str, args.batches)]
        subprocess.run(cmd, check=True)
    sj = json.loads((common.RESULTS / "spikingjelly_reference.json").read_text())
    sj_rows = {(r["batch"], r["T"]): r for r in sj["rows"]}

    train = a2s.load_dataset("fashion_mnist", "train", limit=args.calib)
    calib = list(a2s.make_loader(train, 128, shuffle=False))
    test = a2s.load_dataset("fashion_mnist", "test", limit=args.test_limit)
    xte = torch.stack([test[i][0] for i in range(len(test))])
    yte = torch.tensor([int(test[i][1]) for i in range(len(test))])
    with torch.no_grad():
        ann_acc = 100.0 * float((ann(xte).argmax(1) == yte).float().mean())
    rows = []
    for T in args.timesteps:
        cfg = a2s.ConversionConfig(
            method="parallel", timesteps=T, threshold_mode="max", per_channel=False, calibration_batches=len(calib)
        )
        snn = a2s.convert(ann, cfg, calibration_data=calib, max_batches=len(calib))
        with torch.no_grad():
            out = torch.cat([a2s.simulate(snn, xb, T, mode="rate", record=False).mean_output for xb in xte.split(500)])
        acc = 100.0 * float((out.argmax(1) == yte).float().mean())
        for B in args.batches:
            xb = xte[:B]
            sec = {
                m: time_call(
                    lambda m=m, s=snn, x=xb, t=T: a2s.simulate(s, x, t, mode=m, record=False).mean_output,
                    args.reps,
                )
                for m in ("rate", "spike")
            }
            ref = sj_rows.get((B, T))
            row: dict[str, Any] = {"batch": B, "T": T}
            row["sj_img_s"] = ref["images_per_s"] if ref else None
            row["rate_img_s"] = round(B / sec["rate"], 1)
            row["spike_img_s"] = round(B / sec["spike"], 1)
            row["rate_vs_sj"] = round(B / sec["rate"] / ref["images_per_s"], 2) if ref else None
            row["spike_vs_sj"] = round(B / sec["spike"] / ref["images_per_s"], 2) if ref else None
            row["sj_acc"] = ref["snn_acc"] if ref else None
            row["ann2snn_acc"] = round(acc, 2)
            row["ann_acc"] = round(ann_acc, 2)
            rows.append(row)
            print(", ".join(f"{k}={v}" for k, v in row.items()), flush=True)
    notes = (
        f"Same trained plain-ReLU cnn (cache/cnn_relu_e2_s0), 1 thread. sj: SpikingJelly {sj['meta']['spikingjelly']} "
        f"(torch {sj['meta']['torch']}) `{sj['meta']['convert']}`, multi-step IF simulation. ann2snn: "
        "ConversionConfig(method='parallel', threshold_mode='max', per_channel=False), simulate(mode='rate'|'spike'). "
        f"*_vs_sj = throughput ratio. Accuracy on the first {len(xte)} Fashion-MNIST test images "
        f"(ann2snn in rate mode = spike mode). Machine: {common.machine()}."
    )
    common.write_table(
        rows,
        "spikingjelly_compare",
        title="ann2snn vs SpikingJelly (reference)",
        notes=notes,
        meta={"args": vars(args), "spikingjelly": sj["meta"]},
    )


if __name__ == "__main__":
    main()
