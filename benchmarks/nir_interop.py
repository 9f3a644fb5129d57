"""NIR interop matrix: export the benchmark cnn, run the file in each NIR consumer, compare with ann2snn.

Run from the repository root (CPU only, a few minutes; each consumer lives in its own virtualenv under
``--venvs``, created by ``--setup``: ``python3 -m venv``, ``pip install torch==2.13.0`` first, the consumer with
torch pinned to 2.13.0 by a constraints file, and torch reinstalled at 2.13.0 after)::

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/nir_interop.py [--setup] [--limit 200] [-T 8]

For each exported network (serial IF with the default soft reset and v(0) = θ/2; reset to zero with v(0) = 0;
LIF λ = 0.9 with either reset) and each consumer (snnTorch, SpikingJelly, Norse, Sinabs, Rockpool), the file is
loaded (``stock``: the consumer's importer as shipped; ``mapped``: its node map plus the I/LI/Threshold mappings of
``benchmarks/nir_consumers.py``) and stepped T times by the consumer's own graph module
(``nir_consumers.py``, run in the consumer's virtualenv). The outputs are compared with ann2snn's
``simulate(mode="spike")`` of the same network in the same dtype: max |Δ| over all steps and logits, relative to
the logit scale (max |mean-over-T logit| of ann2snn), and argmax agreement of the mean output. Writes
``results/nir_interop.{csv,md,json}``.
"""

from __future__ import annotations

import argparse
import copy
import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import ann2snn as a2s  # noqa: E402
import common  # noqa: E402
from ann2snn.export.nir import export_nir  # noqa: E402

RUNNER = Path(__file__).resolve().parent / "nir_consumers.py"
CONSUMERS = ("snntorch", "spikingjelly", "norse", "sinabs", "rockpool")
EXTRA_PACKAGES = {"snntorch": ["nir", "nirtorch"], "spikingjelly": ["nir", "nirtorch"], "rockpool": ["nir", "nirtorch"]}


def consumer_dt(consumer: str, fields: dict[str, Any]) -> float:
    """The time step to export for: snnTorch's LIF mapping hard-codes dt = 1e-4; everything else runs at dt = 1
    (SpikingJelly and Norse are told dt = 1; the I/LI mappings use the file's dt)."""
    lif_node = fields.get("neuron") == "lif" and fields.get("reset") == "zero"
    return 1e-4 if consumer == "snntorch" and lif_node else 1.0


VARIANTS = {
    "IF, soft reset, v(0)=θ/2 (default)": {},
    "IF, reset to zero, v(0)=0": {"reset": "zero", "v_init": 0.0},
    "LIF λ=0.9, soft reset, v(0)=θ/2": {"neuron": "lif", "leak": 0.9},
    "LIF λ=0.9, reset to zero, v(0)=0": {"neuron": "lif", "leak": 0.9, "reset": "zero", "v_init": 0.0},
}


def setup_venv(root: Path, consumer: str) -> None:
    """Create ``root/consumer`` with torch 2.13.0 (CPU) and the consumer, torch pinned back to 2.13.0."""
    venv = root / consumer
    pip = [str(venv / "bin" / "pip"), "install", "-q"]
    pin = root / "torch-constraint.txt"
    root.mkdir(parents=True, exist_ok=True)
    pin.write_text("torch==2.13.0\n")
    if not (venv / "bin" / "python").exists():
        subprocess.run(["python3", "-m", "venv", str(venv)], check=True)
    subprocess.run([*pip, "torch==2.13.0"], check=True)
    subprocess.run([*pip, "-c", str(pin), consumer, *EXTRA_PACKAGES.get(consumer, [])], check=False)
    subprocess.run([*pip, "--force-reinstall", "--no-deps", "torch==2.13.0"], check=True)


def consume(venvs: Path, consumer: str, jobs: list[dict[str, Any]], work: Path) -> None:
    """Run the jobs in the consumer's virtualenv (one process: torch and the consumer are imported once)."""
    python = venvs / consumer / "bin" / "python"
    if not python.exists():
        for job in jobs:
            info = {"imported": False, "ran": False, "error": f"no virtualenv {venvs / consumer} (run with --setup)"}
            Path(f"{job['out']}.json").write_text(json.dumps(info))
        return
    spec = work / f"{consumer}-jobs.json"
    spec.write_text(json.dumps(jobs))
    env = {"OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"}
    subprocess.run([str(python), str(RUNNER), consumer, str(spec)], capture_output=True, timeout=3600, env=env)


def result(job: dict[str, Any]) -> tuple[dict[str, Any], np.ndarray | None]:
    path = Path(f"{job['out']}.json")
    if not path.exists():
        return {"imported": False, "ran": False, "error": "the consumer process died"}, None
    info = json.loads(path.read_text())
    return info, (np.load(f"{job['out']}.npy") if info.get("ran") else None)


def _fmt(delta: float) -> str:
    return f"{delta:.1e}" if delta else "0"


def compare(out: np.ndarray | None, ref: torch.Tensor) -> dict[str, Any]:
    """Readout (mean over T) and per-step max |Δ| over the logit scale, and argmax agreement of the readout."""
    empty = {"max |Δ| readout": "", "max |Δ| any step": "", "prediction agreement (%)": ""}
    if out is None:
        return empty
    got = torch.from_numpy(out).to(torch.float64)
    want = ref.to(torch.float64)
    if got.shape != want.shape:
        return {**empty, "max |Δ| readout": f"shape {tuple(got.shape)}"}
    scale = float(want.mean(0).abs().max())
    readout = float((got.mean(0) - want.mean(0)).abs().max()) / scale
    step = float((got - want).abs().max()) / scale
    agree = 100.0 * float((got.mean(0).argmax(-1) == want.mean(0).argmax(-1)).double().mean())
    return {
        "max |Δ| readout": _fmt(readout),
        "max |Δ| any step": _fmt(step),
        "prediction agreement (%)": agree,
        "delta_readout": readout,
        "delta_step": step,
    }


def summary(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One line per network and consumer: stock import, then the mapped runs in float32 and float64."""
    out = []
    for key in dict.fromkeys((r["network"], r["consumer"]) for r in rows):
        runs = {(r["import"], r["dtype"]): r for r in rows if (r["network"], r["consumer"]) == key}

        def cell(run: dict[str, Any] | None) -> str:
            if run is None:
                return ""
            if run["ran"] != "yes":
                error = re.sub(r"<class 'nir\.ir\.\w+\.(\w+)'>", r"nir.\1", run["error"] or "?")
                return "fails: " + error[:72]
            agree = run["prediction agreement (%)"]
            return f"{run['max |Δ| readout']} / {run['max |Δ| any step']}, {agree:.1f}%"

        first = next(iter(runs.values()))
        out.append(
            {
                "network": key[0],
                "consumer": f"{key[1]} {first['version']}",
                "stock importer (float32)": cell(runs.get(("stock", "float32"))),
                "+ mappings, float32": cell(runs.get(("mapped", "float32"))),
                "+ mappings, float64": cell(runs.get(("mapped", "float64"))),
            }
        )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--venvs", type=Path, default=Path("/work/scratch/nir"), help="one virtualenv per consumer")
    parser.add_argument("--setup", action="store_true", help="create the missing virtualenvs first")
    parser.add_argument("--consumers", nargs="+", default=list(CONSUMERS))
    parser.add_argument("--limit", type=int, default=200, help="Fashion-MNIST test images")
    parser.add_argument("-T", "--timesteps", type=int, default=8)
    parser.add_argument("--levels", type=int, default=8, help="QCFS levels of the benchmark cnn")
    args = parser.parse_args()
    common.setup(1)
    if args.setup:
        for consumer in args.consumers:
            if not (args.venvs / consumer / "bin" / "python").exists():
                setup_venv(args.venvs, consumer)
    ann = common.trained_cnn("qcfs", levels=args.levels).eval()
    x, y = next(iter(common.test_loader(args.limit, limit=args.limit)))
    with torch.no_grad():
        ann_acc = 100.0 * float((ann(x).argmax(1) == y).double().mean())
    work = Path(tempfile.mkdtemp(prefix="nir_interop_"))
    inputs = work / "inputs.npy"
    np.save(inputs, x.numpy().astype(np.float32))
    start = time.perf_counter()
    plan: list[dict[str, Any]] = []  # one entry per table row
    own: dict[str, dict[str, Any]] = {}
    for v, (variant, fields) in enumerate(VARIANTS.items()):
        snn = a2s.convert(ann, a2s.ConversionConfig(method="serial", timesteps=args.timesteps, **fields))
        nets = {"float32": snn, "float64": copy.deepcopy(snn).double()}  # each dtype is exported from its own model
        refs = {d: a2s.simulate(net, x.to(getattr(torch, d)), args.timesteps).outputs for d, net in nets.items()}
        snn_acc = 100.0 * float((refs["float32"].mean(0).argmax(1) == y).double().mean())
        own[variant] = compare(refs["float32"].double().numpy(), refs["float64"])  # ann2snn float32 vs float64
        files: dict[tuple[float, str], tuple[Path, str, str]] = {}
        for consumer in args.consumers:
            dt = consumer_dt(consumer, fields)
            for mode, dtype in (("stock", "float32"), ("mapped", "float32"), ("mapped", "float64")):
                if (dt, dtype) not in files:
                    path = work / f"v{v}-dt{dt:g}-{dtype}.nir"
                    graph = export_nir(nets[dtype], path, (1, 28, 28), dt=dt)
                    kinds = " ".join(sorted({type(n).__name__ for n in graph.nodes.values()} - {"Input", "Output"}))
                    files[dt, dtype] = path, kinds, str(graph.metadata["ann2snn_extensions"]) or "none"
                path, kinds, extended = files[dt, dtype]
                job = {
                    "mode": mode,
                    "file": str(path),
                    "inputs": str(inputs),
                    "timesteps": args.timesteps,
                    "dt": dt,
                    "dtype": dtype,
                    "out": str(work / f"{consumer}-{mode}-{path.stem}"),
                }
                plan.append(
                    {
                        "consumer": consumer,
                        "job": job,
                        "ref": refs[dtype],
                        "network": variant,
                        "NIR nodes": kinds,
                        "extension metadata": extended,
                        "ann2snn SNN acc (%)": snn_acc,
                    }
                )
    for consumer in args.consumers:
        print(f"running {consumer} ...", flush=True)
        consume(args.venvs, consumer, [p["job"] for p in plan if p["consumer"] == consumer], work)
    rows = []
    for p in plan:
        info, out = result(p["job"])
        job = p["job"]
        rows.append(
            {
                "network": p["network"],
                "consumer": p["consumer"],
                "version": info.get(f"{p['consumer']}_version") or "",
                "import": job["mode"],
                "dtype": job["dtype"],
                "imported": "yes" if info["imported"] else "no",
                "ran": "yes" if info["ran"] else "no",
                **compare(out, p["ref"]),
                "passed": info.get("passed", ""),
                "export dt": job["dt"],
                "error": info.get("error", ""),
                "NIR nodes": p["NIR nodes"],
                "extension metadata": p["extension metadata"],
                "ann2snn SNN acc (%)": p["ann2snn SNN acc (%)"],
                "nir": info.get("nir_version"),
                "nirtorch": info.get("nirtorch_version"),
            }
        )
    columns = [
        "network",
        "consumer",
        "version",
        "import",
        "dtype",
        "imported",
        "ran",
        "max |Δ| readout",
        "max |Δ| any step",
        "prediction agreement (%)",
        "passed",
        "error",
    ]
    accs = {v: next(r["ann2snn SNN acc (%)"] for r in rows if r["network"] == v) for v in VARIANTS}
    notes = (
        f"QCFS L={args.levels} cnn, first {args.limit} Fashion-MNIST test images, T = {args.timesteps}, direct "
        f"encoding; ANN accuracy {ann_acc:.1f}%. Δ readout: max over images and logits of |consumer − ann2snn "
        "simulate(mode='spike')| of the mean-over-T output, in the same dtype, over the logit scale max |mean logit|; "
        "Δ any step: the same for every step's output (a spike fired one step earlier or later shows here, not in "
        "the readout). For scale, ann2snn's own float32 and float64 simulations differ by (readout / any step) "
        + ", ".join(f"{v}: {o['max |Δ| readout']} / {o['max |Δ| any step']}" for v, o in own.items())
        + ". `stock`: the importer "
        "as shipped (snnTorch and Norse fed one unbatched sample at a time, since they map nir.Flatten without the "
        "batch shift); `mapped`: the importer's node map plus the nir.I / nir.LI / nir.Threshold mappings of "
        "benchmarks/nir_consumers.py (plus nir.AvgPool2d for Norse and Sinabs, whose importers drop it, and a "
        "batch-aware nir.Flatten for snnTorch and Norse). float64 rows: the float64 model exported in float64; "
        "the snnTorch, Norse and Sinabs importers convert the weights to float32, hence their ~1e-8. ann2snn "
        "accuracy of each "
        "network: "
        + ", ".join(f"{v} {a:.1f}%" for v, a in accs.items())
        + f". Wall time {time.perf_counter() - start:.0f} s."
    )
    meta = {"ann_acc": ann_acc, "snn_acc": accs, "own_float32_vs_float64": own, "timesteps": args.timesteps}
    meta["limit"] = args.limit
    common.write_table(
        summary(rows),
        "nir_interop_summary",
        title="NIR interop summary (Δ readout / Δ any step, prediction agreement)",
        notes=notes,
        meta=meta,
    )
    shutil.rmtree(work, ignore_errors=True)
    common.write_table(
        rows,
        "nir_interop",
        title="NIR interop: ann2snn exports run in other tools",
        notes=notes,
        columns=columns,
        meta=meta,
    )


if __name__ == "__main__":
    main()
