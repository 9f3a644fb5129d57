"""Run the "Load it in X" snippets of docs/ecosystem.md in each consumer's virtualenv and check their logits.

Run from the repository root after ``benchmarks/nir_interop.py --setup`` made the virtualenvs::

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/nir_snippets.py [--venvs /work/scratch/nir]

Exports the benchmark cnn (serial IF, soft reset, v(0) = θ/2) as ``model.nir`` in a temporary folder, saves the
docs' mapping block as ``nir_extra.py`` there, runs each consumer's block as written with ``x`` (the first 100
Fashion-MNIST test images) and ``T = 8`` defined, and compares its ``logits`` with ann2snn's mean output. Prints one
line per consumer; exits 1 if a snippet fails or disagrees.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import ann2snn as a2s  # noqa: E402
import common  # noqa: E402
from ann2snn.export.nir import export_nir  # noqa: E402

DOC = Path(__file__).resolve().parents[1] / "docs" / "ecosystem.md"
NAMES = {"SpikingJelly": "spikingjelly", "snnTorch": "snntorch", "Norse": "norse", "Sinabs": "sinabs"}


def snippets() -> tuple[str, dict[str, str]]:
    """The mapping block and each consumer's block of the "Load it in X" section."""
    text = DOC.read_text().split("### Load it in X", 1)[1]
    blocks = re.findall(r"\n\n(\w+)(?:(?!```|\n\n).)*?```python\n(.*?)```", text, flags=re.S)
    extra = re.search(r"```python\n(.*?)```", text, flags=re.S)
    assert extra is not None
    return extra.group(1), {NAMES[name]: code for name, code in blocks if name in NAMES}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--venvs", type=Path, default=Path("/work/scratch/nir"))
    parser.add_argument("-T", "--timesteps", type=int, default=8)
    args = parser.parse_args()
    common.setup(1)
    ann = common.trained_cnn("qcfs", levels=8).eval()
    x, _ = next(iter(common.test_loader(100, limit=100)))
    snn = a2s.convert(ann, a2s.ConversionConfig(method="serial", timesteps=args.timesteps))
    ref = a2s.simulate(snn, x, args.timesteps).mean_output.double()
    work = Path(tempfile.mkdtemp(prefix="nir_snippets_"))
    export_nir(snn, work / "model.nir", (1, 28, 28))
    np.save(work / "x.npy", x.numpy())
    extra, blocks = snippets()
    (work / "nir_extra.py").write_text(extra)
    failed = False
    for consumer, code in blocks.items():
        prelude = f"import numpy as np, torch\nx = torch.from_numpy(np.load('x.npy'))\nT = {args.timesteps}\n"
        epilogue = f"\nnp.save('logits_{consumer}.npy', logits.detach().double().numpy())\n"
        script = work / f"snippet_{consumer}.py"
        script.write_text(prelude + code + epilogue)
        done = subprocess.run(
            [str(args.venvs / consumer / "bin" / "python"), script.name], cwd=work, capture_output=True, text=True
        )
        if done.returncode != 0:
            print(f"{consumer:12s} FAILED: {done.stderr.strip().splitlines()[-1:]}")
            failed = True
            continue
        got = torch.from_numpy(np.load(work / f"logits_{consumer}.npy"))
        delta = float((got - ref).abs().max() / ref.abs().max())
        agree = 100.0 * float((got.argmax(1) == ref.argmax(1)).double().mean())
        print(f"{consumer:12s} max |Δ| / logit scale {delta:.1e}, prediction agreement {agree:.1f}%")
        failed |= delta > 1e-5 or agree < 100.0
    shutil.rmtree(work, ignore_errors=True)
    raise SystemExit(1 if failed else 0)


if __name__ == "__main__":
    main()
