"""torchrun with 2 gloo processes on CPU: trains, rank 0 alone writes the checkpoint, matches one process.

Tolerance: with the same seed, the same global batch (2 x 16 vs 1 x 32) and the same sample order, DDP's averaged
gradient equals the single-process gradient up to float32 reassociation (~1e-7 relative per step). Over the 24
SGD steps here that stays below 1e-5; we allow 1e-4 (absolute, weights of order 0.1-1). A QCFS floor could flip for
an input within ~1e-6 of a step boundary, which would show as a larger jump: the assertion would catch it.
The model has no BatchNorm (DDP keeps per-rank batch statistics) and no dropout (per-rank RNG streams).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap

import pytest
import torch
from torch import nn

import ann2snn as a2s

SCRIPT = textwrap.dedent(
    """
    import os, sys, torch
    from torch import nn
    import ann2snn as a2s
    sys.path.insert(0, os.path.dirname(__file__))
    from ddp_case import data, model
    torch.set_num_threads(1)
    out = os.path.join(sys.argv[1], "rank" + os.environ["RANK"])
    cfg = a2s.TrainConfig(epochs=3, batch_size=16, lr=0.05, seed=0, device="cpu")
    a2s.train(model(), data("train"), cfg, out_dir=out, eval_data=data("test"), progress=os.environ["RANK"] == "0")
    """
)

CASE = textwrap.dedent(
    """
    import torch
    from torch import nn
    import ann2snn as a2s

    def data(split):
        g = torch.Generator().manual_seed(1 if split == "train" else 2)
        x = torch.randn(256 if split == "train" else 100, 12, generator=g)
        y = (x[:, :3].sum(1) > 0).long() + (x[:, 3] > 1).long()
        return (x, y)

    def model():
        torch.manual_seed(0)
        net = nn.Sequential(nn.Linear(12, 32), nn.ReLU(), nn.Linear(32, 16), nn.ReLU(), nn.Linear(16, 3))
        return a2s.prepare(net, a2s.QuantConfig(levels=8, threshold=2.0))
    """
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.slow
def test_two_process_gloo_matches_single_process(tmp_path):
    (tmp_path / "ddp_case.py").write_text(CASE)
    (tmp_path / "run.py").write_text(SCRIPT)
    env = dict(os.environ, OMP_NUM_THREADS="1", CI="1")
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node=2",
        "--master_addr=127.0.0.1",
        f"--master_port={_free_port()}",
        str(tmp_path / "run.py"),
        str(tmp_path),
    ]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    # Only rank 0 writes: rank 1's folder never appears; rank 0 has one final checkpoint.
    assert not (tmp_path / "rank1").exists()
    assert sorted(p.name for p in (tmp_path / "rank0").iterdir() if p.name.startswith("final")) == [
        "final.json",
        "final.safetensors",
    ]
    assert proc.stderr.count("epoch 3/3") == 1  # rank-0-only logging
    sys.path.insert(0, str(tmp_path))
    try:
        from ddp_case import data, model
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("ddp_case", None)
    ddp = a2s.load_checkpoint(tmp_path / "rank0" / "final", model=model())
    torch.set_num_threads(1)
    single = a2s.train(
        model(),
        data("train"),
        a2s.TrainConfig(epochs=3, batch_size=32, lr=0.05, seed=0, device="cpu"),
        eval_data=data("test"),
        progress=False,
    )
    diffs = [
        (a - b).abs().max().item()
        for a, b in zip(single.model.state_dict().values(), ddp.model.state_dict().values(), strict=True)
    ]
    print(f"max |weight difference| DDP vs single process: {max(diffs):.2e}")
    assert max(diffs) < 1e-4, diffs
    assert ddp.meta["metrics"]["eval_acc"] == pytest.approx(single.eval_acc, abs=0.011)  # sharded eval, 100 samples
    assert isinstance(ddp.model, nn.Module) and single.history[-1]["epoch"] == 3
