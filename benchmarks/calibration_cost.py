"""Cost of DA calibration (``match``) against depth: ResNet-20/32/56, with and without weight refit.

Every row runs in a subprocess of its own so its peak memory (``ru_maxrss``, or ``torch.cuda.max_memory_allocated``
on CUDA) is its own. Models: ``create_model(name, num_classes=10, in_channels=1, image_size=32, seed=0)`` with
random weights and randomised BN statistics (cost does not depend on training); calibration data: Fashion-MNIST
training images padded to 32×32. The SNN is the parallel conversion at T = 4 with per-channel 99.9% thresholds.

Columns: calibration seconds (on the CPU the process's CPU time, one thread, so that other load on a shared
machine does not count; on CUDA wall time) and wall seconds; seconds per stage (site or refit layer) and per site;
ANN-forward equivalents
(calibration time / time of one forward pass of the ANN over the same calibration images, measured in the same
process); memory in use before the calibration and its peak during the calibration (CPU: the resident set, VmHWM
reset just before; CUDA: allocated memory), and the frontier's peak size (from the SNN's log).

``--legacy-src DIR`` adds the same rows run with the ann2snn source tree in ``DIR`` (e.g. an older checkout whose
calibration reruns the network from the input for every stage), for comparison.

Run from the repository root::

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/calibration_cost.py     # writes results/calibration_cost.*
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/calibration_cost.py --batches 2 --models resnet20   # smoke run
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from float32_levels import randomize_bn  # noqa: E402

MODELS = ("resnet20", "resnet32", "resnet56")
HERE = Path(__file__).resolve().parent


def _status_mib(field: str) -> float | None:
    """A memory field of /proc/self/status (Linux) in MiB, or None."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def _reset_peak(device: torch.device) -> float:
    """Start a new peak-memory window; returns the memory in use now (MiB)."""
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
        return torch.cuda.memory_allocated(device) / 2**20
    try:
        Path("/proc/self/clear_refs").write_text("5")  # Linux: resets the resident high-water mark (VmHWM)
    except OSError:
        pass
    return _status_mib("VmRSS") or 0.0


def _peak_mib(device: torch.device) -> float:
    """Peak memory since :func:`_reset_peak` (CUDA: allocated; CPU: VmHWM, else the process's ru_maxrss)."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return _status_mib("VmHWM") or resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_row(name: str, refit: bool, n_batches: int, batch_size: int, device: torch.device) -> dict[str, Any]:
    """One row, in this process: convert, time the ANN forward and the calibration, read the peak memory."""
    import ann2snn as a2s
    from ann2snn.calibrate import calibrate_da

    torch.set_num_threads(int(os.environ.get("BENCH_THREADS", "1")))
    data = a2s.load_dataset("fashion_mnist", "train", limit=n_batches * batch_size)
    x = torch.stack([data[i][0] for i in range(len(data))])
    x = F.pad(x, (2, 2, 2, 2)).to(device)
    batches = list(x.split(batch_size))
    model = a2s.create_model(name, num_classes=10, in_channels=1, image_size=32, seed=0)
    ann = randomize_bn(model, torch.Generator().manual_seed(0)).to(device)
    cfg = a2s.ConversionConfig(method="parallel", timesteps=4, per_channel=True, percentile=99.9)
    snn = a2s.convert(ann, cfg, calibration_data=batches)
    clock = time.perf_counter if device.type == "cuda" else time.process_time  # CPU: this process's own time
    forward, forward_wall = [], []
    with torch.no_grad():
        for _ in range(3):
            _sync(device)
            start, wall = clock(), time.perf_counter()
            for b in batches:
                ann(b)
            _sync(device)
            forward.append(clock() - start)
            forward_wall.append(time.perf_counter() - wall)
    before = _reset_peak(device)
    start, wall = clock(), time.perf_counter()
    cal = calibrate_da(snn, ann, batches, estimator="match", refit=refit, progress=False, max_batches=None)
    _sync(device)
    seconds, seconds_wall = clock() - start, time.perf_counter() - wall
    sites = len(snn.sites)
    stages = sites + (_refit_stages(snn) if refit else 0)
    frontier = re.search(r"frontier peak ([0-9.]+) MiB", " ".join(cal.log))
    return {
        "model": name,
        "refit": refit,
        "sites": sites,
        "stages": stages,
        "images": len(x),
        "calibration s": round(seconds, 2),
        "wall s": round(seconds_wall, 2),
        "s per site": round(seconds / sites, 3),
        "s per stage": round(seconds / stages, 3),
        "ANN forward s": round(min(forward), 3),
        "ANN forward wall s": round(min(forward_wall), 3),
        "ANN-forward equivalents": round(seconds / min(forward), 1),
        "peak MiB": round(_peak_mib(device), 0),
        "in use before MiB": round(before, 0),
        "frontier peak MiB": float(frontier.group(1)) if frontier else None,
    }


def _refit_stages(snn: Any) -> int:
    """Conv2d/Linear layers called once in the SNN's graph (the refit stages)."""
    calls = [str(n.target) for n in snn.net.graph.nodes if n.op == "call_module"]
    layers = [c for c in dict.fromkeys(calls) if isinstance(snn.net.get_submodule(c), (nn.Conv2d, nn.Linear))]
    return sum(1 for c in layers if calls.count(c) == 1)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _subprocess_row(args: argparse.Namespace, name: str, refit: bool, src: Path, algorithm: str) -> dict[str, Any]:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--row", name, "--refit", str(int(refit))]
    cmd += ["--batches", str(args.batches), "--batch-size", str(args.batch_size), "--device", args.device]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(src), str(HERE)])}
    out = subprocess.run(cmd, env=env, check=True, capture_output=True, text=True).stdout
    row = json.loads(out.strip().splitlines()[-1])
    print(
        f"{algorithm:>22} {name} refit={refit}: {row['calibration s']} s, "
        f"{row['ANN-forward equivalents']} ANN forwards, {row['peak MiB']} MiB",
        flush=True,
    )
    return {"algorithm": algorithm, **row}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=MODELS)
    parser.add_argument("--batches", type=int, default=16)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--legacy-src", type=Path, default=None, help="an older ann2snn src/ to compare with")
    parser.add_argument("--stem", default="calibration_cost")
    parser.add_argument("--row", help=argparse.SUPPRESS)
    parser.add_argument("--refit", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.row:
        print(json.dumps(run_row(args.row, bool(args.refit), args.batches, args.batch_size, torch.device(args.device))))
        return
    import common

    src = HERE.parent / "src"
    rows = []
    for refit in (False, True):
        for name in args.models:
            rows.append(_subprocess_row(args, name, refit, src, "frontier"))
            if args.legacy_src is not None:
                rows.append(_subprocess_row(args, name, refit, args.legacy_src, "rerun per stage"))
    base = {r["refit"]: r["s per site"] for r in rows if r["model"] == "resnet20" and r["algorithm"] == "frontier"}
    for r in rows:
        r["s per site / ResNet-20's"] = round(r["s per site"] / base[r["refit"]], 2) if r["refit"] in base else None
    notes = (
        f"DA `match` at T = 4 on {args.batches} batches of {args.batch_size} Fashion-MNIST images padded to 32×32, "
        f"device {args.device}, {os.environ.get('BENCH_THREADS', '1')} thread(s); random weights, randomised BN. "
        "Seconds: the process's CPU time on the CPU (wall time on CUDA); wall s: elapsed time. "
        "ANN-forward equivalents = calibration seconds / seconds of one ANN forward over the same images. "
        "Peak MiB: the largest resident set during the calibration (CPU; the high-water mark is reset just before "
        "it, so it includes the in-use memory before) or the largest allocated CUDA memory; frontier peak: the "
        "largest total of the values both branches keep between stages, over all batches."
    )
    common.write_table(
        rows,
        args.stem,
        title="DA calibration cost against depth",
        notes=notes,
        meta={"batches": args.batches, "batch_size": args.batch_size, "device": args.device},
    )


if __name__ == "__main__":
    main()
