"""Where could a leak buy salt-and-pepper robustness? Leak placements measured on Fashion-MNIST (issue #5).

Rows: the StepReLU SNN (step 0.25, n = 8, T = 8) with a leak on every layer, on the first (input) layer only, or
on the deeper layers only (exponential λ or linear δ, both in the firing phase), plus two non-leak controls on the
first layer (a pure gain g and a threshold shift s·Θ of the current, i.e. a leak during integration); and the serial
IF/LIF conversion of the QCFS L = 8 model (v_init 0.5) with λ, with λ and its threshold re-scaled by the leak's
steady-state gain (1 − λ^T)/((1 − λ)·T), and with a linear leak δ. Accuracy on clean and salt-and-pepper p = 0.05
images (seeded noise), on the validation split (test images 0..499) and the report split (1000..2999).
Writes ``benchmarks/results/leak_placement.{csv,md,json}``; discussed in docs/steprelu.md, "Why the leak does not
help here".

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/leak_placement.py [--split val|report|both]
"""

from __future__ import annotations

import argparse
import copy
import sys
from pathlib import Path

import torch
from torch.utils.data import Subset

sys.path.insert(0, str(Path(__file__).resolve().parent))

import ann2snn as a2s  # noqa: E402
import common  # noqa: E402
from ann2snn.evaluate.noise import corrupt, parse_attacks  # noqa: E402
from ann2snn.evaluate.robustness import noise_generator  # noqa: E402
from ann2snn.simulate.runner import simulate  # noqa: E402
from ann2snn.transforms.steprelu import set_leak  # noqa: E402

SPLITS = {"val": (0, 500), "report": (1000, 3000)}
SP = parse_attacks("sp:0.05")[0]


def split(lo: int, hi: int, bs: int = 500, seed: int = 7) -> list:
    test = common.fashion_data()[1]
    loader = a2s.make_loader(Subset(test, range(lo, hi)), bs, shuffle=False)
    return [(x, corrupt(SP, x, generator=noise_generator(seed, i + lo // bs, 1)), y) for i, (x, y) in enumerate(loader)]


def accuracy(snn, data: list, T: int) -> tuple[float, float]:
    """(clean, salt-and-pepper) accuracy (%)."""
    mode = "rate" if snn.execution == "parallel" else "spike"
    hits, n = [0, 0], 0
    for x, xn, y in data:
        for k, xx in enumerate((x, xn)):
            hits[k] += int((simulate(snn, xx, T, mode=mode, record=False).mean_output.argmax(-1) == y).sum())
        n += y.numel()
    return 100 * hits[0] / n, 100 * hits[1] / n


def scaled(snn, factor: float = 1.0, shift: float = 0.0, names=None):
    """A copy whose neurons see ``factor·I − shift·Θ`` (Θ: the neuron's threshold); an experiment-only control."""
    m = copy.deepcopy(snn)
    for name, neu in m.neurons().items():
        if names is None or name in names:
            theta = float(neu.step * neu.steps) if hasattr(neu, "step") else neu.threshold
            neu.register_forward_pre_hook(lambda mod, inp, f=factor, s=shift, th=theta: (inp[0] * f - s * th,))
    return m


def gain_comp(lam: float, T: int) -> float:
    """Steady-state gain of ``v ← λ·v + I`` over T steps, relative to IF: (1 − λ^T)/((1 − λ)·T)."""
    return 1.0 if lam == 1.0 else (1 - lam**T) / ((1 - lam) * T)


def rows() -> list[tuple[str, object, int]]:
    step_ann = common.trained_cnn("steprelu", epochs=4, step=0.25, steps=8).eval()
    q_ann = common.trained_cnn("qcfs", levels=8, epochs=4).eval()
    snn = a2s.convert(step_ann, a2s.ConversionConfig(method="steprelu", timesteps=8))
    names = list(snn.neurons())
    first, deep = {names[0]: None}, names[1:]
    out = [("StepReLU SNN, no leak", snn, 8)]
    out += [(f"StepReLU, all layers λ={v}", set_leak(snn, v), 8) for v in (0.98, 0.94)]
    out += [(f"StepReLU, all layers δ={v}", set_leak(snn, (1.0, v)), 8) for v in (0.01, 0.1)]
    out += [(f"StepReLU, deep layers λ={v}", set_leak(snn, dict.fromkeys(deep, v)), 8) for v in (0.97,)]
    out += [(f"StepReLU, first layer λ={v}", set_leak(snn, dict.fromkeys(first, v)), 8) for v in (0.97, 0.94)]
    out += [(f"StepReLU, first layer δ={v}", set_leak(snn, dict.fromkeys(first, (1.0, v))), 8) for v in (0.15, 0.2)]
    out += [("StepReLU, first layer gain 0.85 (control)", scaled(snn, 0.85, names=first), 8)]
    out += [("StepReLU, first layer shift 0.05·Θ (control)", scaled(snn, shift=0.05, names=first), 8)]
    for T in (8, 16):
        ser = a2s.convert(q_ann, a2s.ConversionConfig(method="serial", timesteps=T, v_init=0.5))
        out.append((f"QCFS serial IF T={T}", ser, T))
        for lam in (0.98,):
            out.append((f"QCFS serial LIF λ={lam} T={T}", set_leak(ser, lam), T))
            comp = scaled(set_leak(ser, lam), 1 / gain_comp(lam, T))
            out.append((f"QCFS serial LIF λ={lam} T={T}, θ re-scaled", comp, T))
        out.append((f"QCFS serial δ=0.002 T={T}", set_leak(ser, (1.0, 0.002)), T))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--split", choices=("val", "report", "both"), default="both")
    args = parser.parse_args()
    common.setup(1)
    names = list(SPLITS) if args.split == "both" else [args.split]
    data = {s: split(*SPLITS[s]) for s in names}
    table = []
    for label, snn, T in rows():
        row: dict[str, object] = {"setting": label}
        for s in names:
            row[f"{s} clean"], row[f"{s} sp:0.05"] = accuracy(snn, data[s], T)
        table.append(row)
        print(row, flush=True)
    splits = ", ".join(f"{s}: test images {lo}..{hi - 1}" for s, (lo, hi) in SPLITS.items() if s in names)
    notes = (
        f"Accuracy (%) on clean and salt-and-pepper p = 0.05 images (seeded noise; {splits}). StepReLU rows: step "
        "0.25, n = 8, T = 8; QCFS rows: the L = 8 cnn converted to serial IF (v_init 0.5). Produced by "
        "`OMP_NUM_THREADS=1 .venv/bin/python benchmarks/leak_placement.py`."
    )
    stem = "leak_placement" if args.split == "both" else f"leak_placement_{args.split}"
    common.write_table(table, stem, title="Leak placements under salt-and-pepper noise", notes=notes)


if __name__ == "__main__":
    torch.set_num_threads(1)
    main()
