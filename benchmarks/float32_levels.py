"""Float32 level flips: does spike mode fire the same levels as rate mode (and the QCFS ANN) on deep nets?

Builds deep random-weight zoo models (BN statistics randomised) in float32, converts them four ways — QCFS at
T = L, QCFS + DA at T = L/2, plain ReLU with per-channel 99.9th-percentile thresholds, plain ReLU + DA (all DA runs
``estimator="match"``, ``weight_refit=False``, on random calibration batches) — and runs every SNN in spike and
rate mode on the same inputs, twice: with each spike-mode level computed from the neuron's summed currents
(``SpikingModel.levels_from="currents"``) and with the default level plan (spike mode fires the levels of a
rate-mode pass). Per site it counts the neurons whose level differs between the modes, and per SNN the
mean-output deviation (fraction of the rate-mode logit range) and the changed predictions. For QCFS at T = L it
also compares the unfolded float32 QCFS ANN's levels with the SNN's (BN folding round-off).

Where a sample first differs (the first site where any of its neurons flips; every op acts per sample, so its
upstream levels are identical there), each flip is classified from the neuron's two input currents — rate mode's
Ī and spike mode's Σ_t I(t)/T — by how far the level argument ``(Ī + ψ)·T/θ + 1/2`` is from an integer (in
float32 ulps of the argument), whether Ī is exactly zero, whether the T per-step currents are equal, and by the
relative difference of the two currents. Spike-mode levels are read from the spike trains and rate-mode levels
from the outputs (``out·T/amplitude``), so the script measures any version of the library the same way.

Run from the repository root::

    .venv/bin/python benchmarks/float32_levels.py                       # resnet20, vgg16, resnet34 (width 32)
    .venv/bin/python benchmarks/float32_levels.py --models resnet20 --batch 16 --threads 1 --stem float32_quick

Writes ``benchmarks/results/<stem>.{csv,md,json}`` (per-SNN rows; per-site flip fractions and the flip
classification in the JSON).
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
import ann2snn as a2s  # noqa: E402
import common  # noqa: E402
from ann2snn.layers.activations import QCFS  # noqa: E402
from ann2snn.layers.neurons import ParallelIFNeuron  # noqa: E402

MODELS = {  # name -> create_model kwargs (CIFAR-size inputs)
    "resnet20": {"width": 16},
    "vgg16": {"width": 32, "hidden": 128, "dropout": 0.0},
    "resnet34": {"width": 32},
}
EPS32 = 2.0**-23


def build(name: str, seed: int, image_size: int) -> nn.Module:
    """A float32 zoo model with random weights and random BN running statistics and affine parameters."""
    torch.manual_seed(seed)
    model = a2s.create_model(name, num_classes=10, in_channels=3, image_size=image_size, **MODELS[name])
    return randomize_bn(model, torch.Generator().manual_seed(seed + 1))


def randomize_bn(model: nn.Module, gen: torch.Generator) -> nn.Module:
    """Random BN running statistics and affine parameters (eval mode), drawn from ``gen``."""
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            c = m.num_features
            m.running_mean.copy_(torch.randn(c, generator=gen) * 0.2)
            m.running_var.copy_(torch.rand(c, generator=gen) + 0.5)
            m.weight.data.copy_(torch.rand(c, generator=gen) + 0.5)
            m.bias.data.copy_(torch.randn(c, generator=gen) * 0.2)
    return model.eval()


def qcfs_version(model: nn.Module, levels: int, x: Tensor) -> nn.Module:
    """QCFS(L) at every site, each θ set (in one pass, in graph order) to the 99th percentile of its input."""
    qann = a2s.prepare(model, a2s.QuantConfig(activation="qcfs", levels=levels)).eval()

    def set_threshold(mod: nn.Module, args: tuple[Tensor, ...]) -> None:
        z = args[0].detach().flatten().double()
        q = float(torch.quantile(z[torch.randperm(z.numel())[: 1 << 20]], 0.99))
        mod.threshold.data = torch.tensor(max(q, 1e-3), dtype=torch.float32)

    handles = [m.register_forward_pre_hook(set_threshold) for m in qann.modules() if isinstance(m, QCFS)]
    with torch.no_grad():
        qann(x)
    for h in handles:
        h.remove()
    return qann


def _amplitude(neuron: ParallelIFNeuron, like: Tensor) -> Tensor:
    return (neuron.threshold + neuron.amplitude_correction).to(like.dtype).expand_as(like)


def record_run(snn: Any, x: Tensor, T: int, mode: str) -> tuple[Tensor, dict[str, dict[str, Tensor]]]:
    """Mean output and, per parallel neuron, its levels and (summed or mean) input current in one mode."""
    neurons = {n: m for n, m in snn.neurons().items() if isinstance(m, ParallelIFNeuron)}
    seen: dict[str, dict[str, Tensor]] = {}

    def hook(name: str, mod: ParallelIFNeuron) -> Any:
        def fn(_m: nn.Module, args: tuple[Tensor, ...], out: Tensor) -> None:
            if mod.mode != mode:  # a spike-mode run may start with a rate-mode level plan
                return
            current = args[0].detach()
            if mode == "spike":
                seq = out.detach().reshape((T, -1) + out.shape[1:])
                level = (seq != 0).sum(0).to(torch.int16)
                cur = current.reshape((T, -1) + current.shape[1:])
                mean, spread = cur.sum(0) / T, (cur.amax(0) - cur.amin(0))
                amp = _amplitude(mod, level.float())
            else:
                amp = _amplitude(mod, out)
                level = torch.round(out.detach() * T / torch.where(amp == 0, 1, amp)).to(torch.int16)
                mean, spread = current, torch.zeros_like(current)
            rec = {"level": level, "mean": mean, "spread": spread, "observable": amp != 0}
            prev = seen.get(name)
            seen[name] = rec if prev is None else {k: torch.cat([prev[k], v]) for k, v in rec.items()}

        return fn

    handles = [m.register_forward_hook(hook(n, m)) for n, m in neurons.items()]
    try:
        res = a2s.simulate(snn, x, T, mode=mode)
    finally:
        for h in handles:
            h.remove()
    return res.mean_output, seen


def classify(rate: dict[str, dict[str, Tensor]], spike: dict[str, dict[str, Tensor]], snn: Any, T: int) -> dict:
    """Flip statistics per site, and the classification of each sample's first flips."""
    neurons = snn.neurons()
    names = [n for n in rate if n in spike]
    B = next(iter(rate.values()))["level"].shape[0]
    first_done = torch.zeros(B, dtype=torch.bool)
    per_site: dict[str, float] = {}
    primary: list[dict[str, float]] = []
    for name in names:
        r, s = rate[name], spike[name]
        obs = r["observable"] & s["observable"]
        diff = (r["level"] != s["level"]) & obs
        per_site[name] = float(diff.sum()) / max(1, int(obs.sum()))
        per_sample = diff.flatten(1).any(1)
        new = per_sample & ~first_done
        first_done |= per_sample
        if not bool(new.any()):
            continue
        m = neurons[name]
        theta = m.threshold.double()
        psi = m.bias.double()
        for b in torch.nonzero(new).flatten().tolist():
            idx = torch.nonzero(diff[b])
            for j in idx[:50].tolist():
                sel = (b, *j)
                mean = r["mean"][sel].double()
                smean = s["mean"][sel].double()
                th = theta if theta.dim() == 0 else theta.expand(r["mean"].shape[1:])[tuple(j)]
                ps = psi if psi.dim() == 0 else psi.expand(r["mean"].shape[1:])[tuple(j)]
                arg = (mean + ps) * T / th + 0.5
                dist = abs(float(arg - torch.round(arg)))
                ulp = max(abs(float(arg)), 1.0) * EPS32
                scale = max(abs(float(mean)), float(th) / T)
                primary.append(
                    {
                        "site": names.index(name),
                        "dist_ulps": dist / ulp,
                        "zero_input": float(mean == 0),
                        "at_boundary": float(dist == 0.0),
                        "equal_steps": float(s["spread"][sel] == 0),
                        "rel_current_diff": abs(float(mean - smean)) / scale,
                        "level_diff": float(abs(int(r["level"][sel]) - int(s["level"][sel]))),
                    }
                )
    return {"per_site": per_site, "primary": primary}


def summarise_primary(primary: list[dict[str, float]]) -> dict[str, float]:
    if not primary:
        return {"n": 0}
    med = sorted(p["dist_ulps"] for p in primary)[len(primary) // 2]
    return {
        "n": len(primary),
        "median_dist_ulps": med,
        "max_dist_ulps": max(p["dist_ulps"] for p in primary),
        "frac_zero_input": sum(p["zero_input"] for p in primary) / len(primary),
        "frac_at_boundary": sum(p["at_boundary"] for p in primary) / len(primary),
        "frac_equal_steps": sum(p["equal_steps"] for p in primary) / len(primary),
        "max_rel_current_diff": max(p["rel_current_diff"] for p in primary),
        "max_level_diff": max(p["level_diff"] for p in primary),
        "first_sites": sorted({int(p["site"]) for p in primary})[:10],
    }


def ann_records(qann: nn.Module, x: Tensor, levels: int) -> dict[str, dict[str, Tensor]]:
    """The unfolded float32 QCFS ANN's levels and pre-activations at every site, by module name."""
    got: dict[str, dict[str, Tensor]] = {}

    def hook(name: str) -> Any:
        def fn(mod: nn.Module, args: tuple[Tensor, ...], out: Tensor) -> None:
            level = torch.round(out.detach() * levels / mod.threshold).to(torch.int16)
            z = args[0].detach()
            got[name] = {"level": level, "mean": z, "spread": torch.zeros_like(z), "observable": level >= 0}

        return fn

    handles = [m.register_forward_hook(hook(n)) for n, m in qann.named_modules() if isinstance(m, QCFS)]
    with torch.no_grad():
        qann(x)
    for h in handles:
        h.remove()
    return got


def measure(snn: Any, x: Tensor, T: int) -> tuple[dict[str, Any], dict, dict[str, dict[str, Tensor]]]:
    """Spike vs rate mode of one SNN: flip counts, output deviation, prediction changes, first flips."""
    out_rate, rate = record_run(snn, x, T, "rate")
    out_spike, spike = record_run(snn, x, T, "spike")
    info = classify(rate, spike, snn, T)
    scale = float(out_rate.max() - out_rate.min()) or 1.0
    flips = sum(int(((rate[n]["level"] != spike[n]["level"]) & rate[n]["observable"]).sum()) for n in rate)
    total = sum(rate[n]["level"].numel() for n in rate)
    row = {
        "flip_ppm": 1e6 * flips / max(1, total),
        "flipped_neurons": flips,
        "sites_with_flips": sum(1 for v in info["per_site"].values() if v > 0),
        "sites": len(info["per_site"]),
        "max_out_dev_of_range": f"{float((out_spike - out_rate).abs().max()) / scale:.1e}",
        "pred_changed": int((out_spike.argmax(-1) != out_rate.argmax(-1)).sum()),
    }
    return row, info, rate


def run_model(name: str, args: argparse.Namespace) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    ann = build(name, args.seed, args.image_size)
    gen = torch.Generator().manual_seed(args.seed + 7)
    shape = (3, args.image_size, args.image_size)
    calib = [torch.rand((args.batch,) + shape, generator=gen) for _ in range(args.calib_batches)]
    x = torch.rand((args.batch,) + shape, generator=gen)
    L = args.levels
    qann = qcfs_version(ann, L, calib[0])
    base = a2s.ConversionConfig(method="parallel", timesteps=L)
    relu = base.replace(threshold_mode="percentile", percentile=99.9, per_channel=True, timesteps=args.relu_T)
    da = {"calibration": "da", "weight_refit": False, "calibration_batches": args.calib_batches}
    variants = [
        ("qcfs", f"T=L={L}", qann, base),
        ("qcfs", f"DA T={max(1, L // 2)}", qann, base.replace(timesteps=max(1, L // 2), **da)),
        ("relu", f"pct T={args.relu_T}", ann, relu),
        ("relu", f"DA T={args.relu_T}", ann, relu.replace(**da)),
    ]
    rows, detail = [], {}
    for kind, setting, model, cfg in variants:
        start = time.perf_counter()
        snn = a2s.convert(model, cfg, calibration_data=calib)
        conv_s = time.perf_counter() - start
        # "currents": each neuron's level from its summed currents (the only rule before level plans existed);
        # "plan": the default, spike mode fires the levels of a rate-mode pass.
        rules = ["currents", "plan"] if hasattr(snn, "levels_from") else ["currents"]
        for rule in rules:
            if hasattr(snn, "levels_from"):
                snn.levels_from = "currents" if rule == "currents" else "auto"
            row, info, rate = measure(snn, x, cfg.timesteps)
            prim = summarise_primary(info["primary"])
            row = {"model": name, "ann": kind, "setting": setting, "spike_levels": rule, **row}
            row.update(primary_flips=prim["n"], primary_median_ulps=prim.get("median_dist_ulps", math.nan))
            row["convert_s"] = round(conv_s, 1)
            key = f"{name} {kind} {setting} {rule}"
            detail[key] = {"per_site_flip_frac": info["per_site"], "primary": prim}
            if kind == "qcfs" and cfg.calibration is None:  # the unfolded QCFS ANN vs the SNN (BN folding)
                ann_info = classify(ann_records(qann, x, L), rate, snn, L)
                ann_prim = summarise_primary(ann_info["primary"])
                ann_flips = sum(v > 0 for v in ann_info["per_site"].values())
                row.update(ann_snn_primary=ann_prim["n"], ann_snn_sites_with_flips=ann_flips)
                detail[key]["ann_vs_snn"] = {"per_site_flip_frac": ann_info["per_site"], "primary": ann_prim}
            rows.append(row)
            print(
                f"{key}: flips {row['flip_ppm']:.3g} ppm ({row['flipped_neurons']}) at {row['sites_with_flips']}/"
                f"{row['sites']} sites, out dev {row['max_out_dev_of_range']} of range, {row['pred_changed']}/"
                f"{args.batch} predictions changed; first flips: {prim}"
                + (
                    f"; ANN vs SNN first flips: {detail[key]['ann_vs_snn']['primary']}"
                    if "ann_snn_primary" in row
                    else ""
                ),
                flush=True,
            )
    return rows, detail


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="resnet20,vgg16,resnet34", help=f"comma-separated, of {sorted(MODELS)}")
    parser.add_argument("--batch", type=int, default=32, help="samples compared (and calibration batch size)")
    parser.add_argument("--calib-batches", type=int, default=2)
    parser.add_argument("--image-size", type=int, default=32)
    parser.add_argument("--levels", type=int, default=4, help="QCFS L (T = L, and DA at T = L/2)")
    parser.add_argument("--relu-T", type=int, default=4, help="T of the plain-ReLU conversions")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--stem", default="float32_levels", help="output name under benchmarks/results/")
    args = parser.parse_args(argv)
    common.setup(args.threads)
    rows: list[dict[str, Any]] = []
    detail: dict[str, Any] = {}
    for name in args.models.split(","):
        if name not in MODELS:
            raise SystemExit(f"unknown model {name!r}; choose from {sorted(MODELS)}")
        new_rows, new_detail = run_model(name, args)
        rows += new_rows
        detail.update(new_detail)
    columns = [
        "model",
        "ann",
        "setting",
        "spike_levels",
        "flip_ppm",
        "flipped_neurons",
        "sites_with_flips",
        "sites",
        "max_out_dev_of_range",
        "pred_changed",
        "primary_flips",
        "primary_median_ulps",
        "ann_snn_primary",
        "ann_snn_sites_with_flips",
        "convert_s",
    ]
    notes = (
        f"float32, random weights and BN statistics, {args.batch} random inputs, {args.calib_batches} random "
        f"calibration batches of {args.batch}; QCFS θ = 99th percentile of each site's input; DA = estimator "
        "'match', weight_refit=False. flip_ppm: neurons whose level differs between spike and rate mode (all "
        "sites, per million); max_out_dev_of_range: max |spike − rate| mean output over the rate-mode logit range; "
        "primary_flips: flips at each sample's first differing site, primary_median_ulps: their distance from a "
        "level boundary in float32 ulps of the level argument; spike_levels: 'currents' = each neuron's level from its "
        "summed currents, 'plan' = from the rate-mode level plan (default); ann_snn_primary: first flips of the "
        "unfolded QCFS ANN vs the SNN's rate mode (T = L), ann_snn_sites_with_flips: sites where they differ. "
        f"Machine: {common.machine()}."
    )
    common.write_table(
        rows, args.stem, title="Float32 level flips: spike vs rate mode", notes=notes, columns=columns, meta=detail
    )


if __name__ == "__main__":
    main()
