"""Speed of parallel conversion: ANN forward vs serial IF vs parallel spike mode vs parallel rate mode.

All four run in one process on the same model, batch and device; repetitions are interleaved (ANN, serial,
spike, rate, ANN, ...) and the median of ``--reps`` is reported, so the ratios are taken under the same machine
load. Weights are random (speed does not depend on them); the ANN is the QCFS network with L = T.

Run from the repository root::

    .venv/bin/python benchmarks/speed.py                      # cnn (Fashion-MNIST size) + resnet20 (32x32)
    .venv/bin/python benchmarks/speed.py --models vgg11 --device cuda

Writes ``benchmarks/results/speed.{csv,md,json,png}``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import ann2snn as a2s  # noqa: E402
import common  # noqa: E402

MODELS = {  # name -> (create_model kwargs, input shape per sample)
    "cnn": ({"in_channels": 1, "image_size": 28}, (1, 28, 28)),
    "resnet20": ({"in_channels": 3, "image_size": 32}, (3, 32, 32)),
    "vgg11": ({"in_channels": 3, "image_size": 32}, (3, 32, 32)),
}
METHODS = ("ann", "serial", "spike", "rate")


def build(name: str, timesteps: int, device: torch.device) -> dict[str, Callable[[torch.Tensor], Any]]:
    """The four runners of one model at T: each takes an analog batch and returns the prediction."""
    kwargs, _ = MODELS[name]
    torch.manual_seed(0)
    model = a2s.create_model(name, num_classes=10, **kwargs)
    qann = a2s.prepare(model, a2s.QuantConfig(activation="qcfs", levels=timesteps, threshold=1.0)).eval()
    qann = qann.to(device)
    parallel = a2s.convert(qann, a2s.ConversionConfig(method="parallel", timesteps=timesteps))
    serial = a2s.convert(qann, a2s.ConversionConfig(method="serial", timesteps=timesteps))

    def ann(x: torch.Tensor) -> Any:
        with torch.no_grad():
            return qann(x)

    return {
        "ann": ann,
        "serial": lambda x: a2s.simulate(serial, x, timesteps, mode="spike").mean_output,
        "spike": lambda x: a2s.simulate(parallel, x, timesteps, mode="spike").mean_output,
        "rate": lambda x: a2s.simulate(parallel, x, timesteps, mode="rate").mean_output,
    }


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def peak_memory(fn: Callable[[torch.Tensor], Any], x: torch.Tensor, device: torch.device) -> float:
    """Peak bytes allocated by torch during one call (CUDA allocator stats; CPU: profiler memory events)."""
    if device.type == "cuda":
        sync(device)
        base = torch.cuda.memory_allocated(device)
        torch.cuda.reset_peak_memory_stats(device)
        fn(x)
        sync(device)
        return float(torch.cuda.max_memory_allocated(device) - base)
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        fn(x)
    changes = []
    for e in prof.events():
        delta = e.cpu_memory_usage if e.name == "[memory]" else e.self_cpu_memory_usage
        if delta:
            changes.append((e.time_range.start, delta))
    current = peak = 0
    for _, delta in sorted(changes):
        current += delta
        peak = max(peak, current)
    return float(peak)


def measure(name: str, timesteps: int, batch: int, reps: int, device: torch.device) -> list[dict[str, Any]]:
    runners = build(name, timesteps, device)
    x = torch.rand((batch,) + MODELS[name][1], device=device)
    # Same predictions (sanity): parallel spike/rate are the QCFS ANN at L = T.
    with torch.no_grad():
        ref = runners["ann"](x).argmax(-1)
    agree = {m: float((runners[m](x).argmax(-1) == ref).float().mean()) for m in METHODS}
    times: dict[str, list[float]] = {m: [] for m in METHODS}
    calls = {}
    for m in METHODS:  # warm-up, and enough calls per timed block for >= 20 ms (small batches are noisy)
        sync(device)
        start = time.perf_counter()
        runners[m](x)
        sync(device)
        calls[m] = max(1, min(50, int(0.02 / max(time.perf_counter() - start, 1e-6))))
    for _ in range(reps):
        for m in METHODS:
            sync(device)
            start = time.perf_counter()
            for _ in range(calls[m]):
                runners[m](x)
            sync(device)
            times[m].append((time.perf_counter() - start) / calls[m])
    med = {m: statistics.median(v) for m, v in times.items()}
    rows = []
    for m in METHODS:
        rows.append(
            {
                "model": name,
                "batch": batch,
                "T": timesteps,
                "method": m,
                "latency_ms": 1000 * med[m],
                "images_per_s": batch / med[m],
                "peak_mem_MiB": peak_memory(runners[m], x, device) / 2**20,
                "vs_ann_throughput": med["ann"] / med[m],
                "vs_T_ann_time": med[m] / (timesteps * med["ann"]),
                "speedup_vs_serial": med["serial"] / med[m],
                "agree_with_ann": agree[m],
            }
        )
    return rows


def plot(rows: list[dict[str, Any]], stem: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    models = sorted({r["model"] for r in rows})
    batches = sorted({r["batch"] for r in rows})
    fig, axes = plt.subplots(len(models), len(batches), figsize=(5 * len(batches), 3.6 * len(models)), squeeze=False)
    for i, model in enumerate(models):
        for j, batch in enumerate(batches):
            ax = axes[i][j]
            for m in METHODS:
                sel = sorted(
                    (r for r in rows if r["model"] == model and r["batch"] == batch and r["method"] == m),
                    key=lambda r: r["T"],
                )
                if sel:
                    ax.plot([r["T"] for r in sel], [r["images_per_s"] for r in sel], marker="o", label=m)
            ax.set(xscale="log", yscale="log", xlabel="T", ylabel="images/s", title=f"{model}, batch {batch}")
            ax.set_xticks([4, 8, 16, 32], labels=["4", "8", "16", "32"])
            ax.grid(alpha=0.3)
            ax.legend(fontsize=8)
    fig.tight_layout()
    common.save_figure(fig, stem)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="cnn,resnet20", help=f"comma-separated, of {sorted(MODELS)}")
    parser.add_argument("--timesteps", type=int, nargs="+", default=[4, 8, 16, 32])
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 128])
    parser.add_argument("--reps", type=int, default=5, help="interleaved repetitions; the median is reported")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: all cores)")
    parser.add_argument("--stem", default="speed", help="output name under benchmarks/results/")
    args = parser.parse_args(argv)
    common.setup(args.threads)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: no CUDA device is available")
    rows: list[dict[str, Any]] = []
    for name in args.models.split(","):
        if name not in MODELS:
            raise SystemExit(f"unknown model {name!r}; choose from {sorted(MODELS)}")
        for batch in args.batches:
            for T in args.timesteps:
                start = time.perf_counter()
                new = measure(name, T, batch, args.reps, device)
                rows += new
                by = {r["method"]: r for r in new}
                print(
                    f"{name} B={batch} T={T}: "
                    + ", ".join(f"{m} {by[m]['images_per_s']:.0f}/s" for m in METHODS)
                    + f"  (rate {by['rate']['vs_ann_throughput']:.2f}x ANN, spike {by['spike']['vs_T_ann_time']:.2f}x"
                    f" T·ANN time, {time.perf_counter() - start:.0f} s)",
                    flush=True,
                )
    notes = (
        "ann: one forward of the QCFS ANN (L = T). serial: IF neurons stepped T times. spike: parallel spike mode "
        "(spike trains at every layer). rate: parallel rate mode (time means; exact spike counts). "
        "vs_ann_throughput = ANN time / method time; vs_T_ann_time = method time / (T x ANN time); "
        f"medians of {args.reps} interleaved repetitions (each >= 20 ms of calls); "
        "peak_mem = peak bytes allocated by torch during one call. "
        f"Machine: {common.machine()}."
    )
    common.write_table(
        rows,
        args.stem,
        title="Speed: ANN vs serial IF vs parallel spike / rate mode",
        notes=notes,
        meta={"args": vars(args)},
    )
    plot(rows, args.stem)


if __name__ == "__main__":
    main()
