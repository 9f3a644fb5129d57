"""SIGKILL a process that saves two checkpoints alternately over one path; count the kills that lose it.

One child process saves two 1.4 MB models (``nn.Linear(600, 600)``) over ``ck`` in a loop; the parent kills it with
SIGKILL after a random 5-100 ms, checks that ``ck`` loads and holds one of the two models, and starts the next
child. It prints how many kills left no loadable checkpoint, the temporary files present after the last kill and
the folder after one more save. POSIX only (uses ``os.fork``).

Run from the repository root::

    .venv/bin/python benchmarks/checkpoint_kills.py --kills 25 --seed 0
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import tempfile
import time
from pathlib import Path

import torch
from torch import nn

import ann2snn as a2s
from ann2snn.errors import Ann2SnnError


def _child(stem: Path, models: list[nn.Linear]) -> None:  # pragma: no cover - runs until killed
    try:
        i = 0
        while True:
            a2s.save_checkpoint(stem, models[i % 2])
            i += 1
    finally:
        os._exit(0)


def run(kills: int, seed: int) -> tuple[int, list[str], list[str]]:
    """``(kills that left no loadable checkpoint, temp files after the last kill, files after one more save)``."""
    torch.set_num_threads(1)
    torch.manual_seed(seed)
    models = [nn.Linear(600, 600), nn.Linear(600, 600)]
    folder = Path(tempfile.mkdtemp(prefix="ann2snn-kills-"))
    stem = folder / "ck"
    a2s.save_checkpoint(stem, models[0])
    rng = random.Random(seed)
    lost = 0
    for _ in range(kills):
        pid = os.fork()
        if pid == 0:
            _child(stem, models)
        time.sleep(rng.uniform(0.005, 0.1))
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        try:
            state = a2s.load_checkpoint(stem, model=nn.Linear(600, 600)).model.state_dict()
            lost += not any(torch.equal(state["weight"], m.weight) for m in models)
        except Ann2SnnError:
            lost += 1
    temps = sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))
    a2s.save_checkpoint(stem, models[1])
    return lost, temps, sorted(p.name for p in folder.iterdir())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=25)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    lost, temps, after = run(args.kills, args.seed)
    print(f"{args.kills} kills: {lost} left no loadable checkpoint; {len(temps)} temporary file(s) after the last")
    print(f"after one more save: {after}")


if __name__ == "__main__":
    main()
