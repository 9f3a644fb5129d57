"""External reference: SpikingJelly's ReLU -> IF converter + multi-step simulation of the ann2snn "cnn".

Standalone: run with a SEPARATE virtualenv that has SpikingJelly (it is not an ann2snn dependency, and this script
does not import ann2snn)::

    python3 -m venv /tmp/sjvenv && /tmp/sjvenv/bin/pip install torch==2.13.0 && /tmp/sjvenv/bin/pip install spikingjelly
    /tmp/sjvenv/bin/pip install --force-reinstall --no-deps torch==2.13.0   # spikingjelly pulls a newer torch
    OMP_NUM_THREADS=1 /tmp/sjvenv/bin/python benchmarks/spikingjelly_reference.py

Builds the plain-ReLU "cnn" of ``src/ann2snn/models/cnn.py`` (avg pool, Fashion-MNIST 28x28), loads the cached
checkpoint ``benchmarks/results/cache/cnn_relu_e2_s0/final.safetensors``, converts it with
``Converter(RateCodingRecipe(calibration_batches, mode="Max")).convert(ann)`` (Conv-BN fusion, layer-wise max
scaling, IF neurons with soft reset), and measures, on one thread, the multi-step (``step_mode="m"``) simulation
time at batch 128 and 1 for T = 4, 8, 16, 32, and accuracy on the first 2000 Fashion-MNIST test images.
Writes ``benchmarks/results/spikingjelly_reference.{csv,md,json}``.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import json
import os
import platform
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

ROOT = Path(__file__).resolve().parent
RESULTS = ROOT / "results"
CKPT = RESULTS / "cache" / "cnn_relu_e2_s0" / "final.safetensors"
DATA = Path("/usr/share/datasets/fashion-mnist")


def conv_bn_relu(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU())


class CNN(nn.Module):
    """Copy of ann2snn's "cnn" at 28x28, pool="avg", hidden=128 (same module names, so the state dict maps)."""

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(
            conv_bn_relu(1, 32), conv_bn_relu(32, 32), nn.AvgPool2d(2), conv_bn_relu(32, 64), nn.AvgPool2d(2)
        )
        self.classifier = nn.Sequential(nn.Flatten(), nn.Linear(64 * 7 * 7, 128), nn.ReLU(), nn.Linear(128, 10))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


def load_cnn() -> tuple[CNN, str]:
    """The cached trained weights (checkpoint keys are ``model.<name>``); run benchmarks/calibration.py to make them."""
    from safetensors.torch import load_file

    if not CKPT.is_file():
        raise SystemExit(f"{CKPT} is missing: run benchmarks/calibration.py (it trains and caches the ReLU cnn) first")
    model = CNN()
    model.load_state_dict({k.removeprefix("model."): v for k, v in load_file(str(CKPT)).items()}, strict=True)
    return model.eval(), f"trained ({CKPT.relative_to(ROOT.parent)})"


def read_idx(name: str) -> np.ndarray:
    with gzip.open(DATA / name, "rb") as f:
        data = f.read()
    ndim = data[3]
    dims = [int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def fashion(split: str, limit: int) -> tuple[torch.Tensor, torch.Tensor]:
    prefix = "train" if split == "train" else "t10k"
    x = read_idx(f"{prefix}-images-idx3-ubyte.gz")[:limit]
    y = read_idx(f"{prefix}-labels-idx1-ubyte.gz")[:limit]
    return torch.from_numpy(x.astype(np.float32) / 255.0).unsqueeze(1), torch.from_numpy(y.astype(np.int64))


def sj_convert(ann: nn.Module, calib: list[torch.Tensor]) -> nn.Module:
    from spikingjelly.activation_based import functional
    from spikingjelly.activation_based.ann2snn import Converter, RateCodingRecipe

    snn = Converter(RateCodingRecipe(calib, mode="Max")).convert(ann)
    functional.set_step_mode(snn, "m")
    return snn.eval()


def sj_run(snn: nn.Module, x: torch.Tensor, T: int) -> torch.Tensor:
    """Multi-step simulation: the analog image is the input current at every step; returns the mean output."""
    from spikingjelly.activation_based import functional

    functional.reset_net(snn)
    with torch.no_grad():
        out = snn(x.unsqueeze(0).expand(T, *x.shape).contiguous())
    return out.mean(0)


def time_call(fn: Any, reps: int) -> float:
    fn()  # warm-up
    start = time.perf_counter()
    fn()
    calls = max(1, min(50, int(0.02 / max(time.perf_counter() - start, 1e-6))))
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        for _ in range(calls):
            fn()
        times.append((time.perf_counter() - start) / calls)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--timesteps", type=int, nargs="+", default=[4, 8, 16, 32])
    parser.add_argument("--batches", type=int, nargs="+", default=[128, 1])
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--test-limit", type=int, default=2000)
    parser.add_argument("--calib", type=int, default=1024, help="training images for the Max statistics")
    parser.add_argument("--stem", default="spikingjelly_reference")
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    import spikingjelly

    ann, source = load_cnn()
    xtr, _ = fashion("train", args.calib)
    xte, yte = fashion("test", args.test_limit)
    calib = list(torch.split(xtr, 128))
    start = time.perf_counter()
    snn = sj_convert(ann, calib)
    convert_s = time.perf_counter() - start
    with torch.no_grad():
        ann_acc = 100.0 * float((ann(xte).argmax(1) == yte).float().mean())
    print(f"weights: {source}; ANN accuracy {ann_acc:.2f}% on {len(xte)} test images; convert {convert_s:.1f} s")
    rows = []
    for T in args.timesteps:
        correct = sum(
            int((sj_run(snn, xb, T).argmax(1) == yb).sum())
            for xb, yb in zip(xte.split(500), yte.split(500), strict=True)
        )
        acc = 100.0 * correct / len(xte)
        for B in args.batches:
            xb = xte[:B]
            sec = time_call(lambda xb=xb, t=T: sj_run(snn, xb, t), args.reps)
            rows.append(
                {
                    "framework": "spikingjelly",
                    "batch": B,
                    "T": T,
                    "latency_ms": round(1000 * sec, 3),
                    "images_per_s": round(B / sec, 1),
                    "snn_acc": round(acc, 2),
                    "ann_acc": round(ann_acc, 2),
                }
            )
            print(f"T={T:<2} B={B:<3} {B / sec:8.1f} img/s  acc {acc:.2f}%", flush=True)
    meta = {
        "spikingjelly": getattr(spikingjelly, "__version__", None) or _dist_version("spikingjelly"),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "threads": torch.get_num_threads(),
        "weights": source,
        "convert": 'Converter(RateCodingRecipe(calib, mode="Max")).convert(ann); set_step_mode(snn, "m")',
        "calib_images": args.calib,
        "test_images": len(xte),
        "convert_s": round(convert_s, 2),
        "reps": args.reps,
        "machine": {"cpus": os.cpu_count(), "load": os.getloadavg()},
        "snn": str(snn),
    }
    write(rows, meta, args.stem)


def _dist_version(name: str) -> str | None:
    from importlib.metadata import version

    return version(name)


def write(rows: list[dict[str, Any]], meta: dict[str, Any], stem: str) -> None:
    cols = list(rows[0])
    with open(RESULTS / f"{stem}.csv", "w", newline="") as f:
        w = csv.DictWriter(f, cols)
        w.writeheader()
        w.writerows(rows)
    md = ["# External reference: SpikingJelly rate-coding conversion, multi-step simulation", ""]
    md += ["| " + " | ".join(cols) + " |", "|" + "|".join("---" if c == "framework" else "---:" for c in cols) + "|"]
    md += ["| " + " | ".join(str(r[c]) for c in cols) + " |" for r in rows]
    md += [
        "",
        f"spikingjelly {meta['spikingjelly']}, torch {meta['torch']}, {meta['threads']} thread(s); "
        f"weights: {meta['weights']}; conversion: `{meta['convert']}`; accuracy on the first "
        f"{meta['test_images']} Fashion-MNIST test images; latency = median of {meta['reps']} timed blocks.",
        "",
    ]
    (RESULTS / f"{stem}.md").write_text("\n".join(md))
    (RESULTS / f"{stem}.json").write_text(json.dumps({"rows": rows, "meta": meta}, indent=2))
    print(f"wrote {RESULTS / stem}.{{csv,md,json}}")


if __name__ == "__main__":
    main()
