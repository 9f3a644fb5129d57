"""SIGKILL a real ``python -m ann2snn train`` run mid-epoch, resume it, and get the uninterrupted result bit for bit.

After every kill the output folder may hold only complete files: each ``.json`` parses, each ``.safetensors``
parses, and each checkpoint pair whose ``.json`` exists loads with its hash verified. Temporary ``.*.tmp`` files
of an interrupted atomic write are allowed (they are never read, and a resumed run deletes them). Once, the worst
moment of a save (old ``last.json`` removed, new one not yet written) is forced, and the next run must resume from
``previous``. Checked to fail when the optimizer state is not restored on resume.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors import safe_open

from ann2snn.export.checkpoint import Checkpoint, load_checkpoint
from ann2snn.train.lock import LOCK_NAME

pytestmark = [pytest.mark.slow, pytest.mark.skipif(os.name != "posix", reason="needs SIGKILL")]

KILLS = 4
ARGS = [
    "train", "--model", "cnn", "--dataset", "digits", "--epochs", "2", "--batch-size", "32", "--limit", "640",
    "--checkpoint-every", "2", "--seed", "3", "--lr", "0.05", "--device", "cpu", "--resume",
]  # fmt: skip
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "CI": "1", "PYTHONHASHSEED": "0"}


def _command(out: Path) -> list[str]:
    return [sys.executable, "-m", "ann2snn", *ARGS, "--out", str(out)]


def _run_to_end(out: Path) -> str:
    proc = subprocess.run(_command(out), env=ENV, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return proc.stderr


def _saved_step(out: Path) -> int:
    """Global step recorded in ``out/last.json`` (-1 when absent or mid-replacement)."""
    try:
        meta = json.loads((out / "last.json").read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return -1
    return int(meta["training_state"]["global_step"])


def _assert_no_partial_files(out: Path) -> None:
    names = set()
    for path in out.iterdir():
        if path.name == LOCK_NAME:  # the training lock (ann2snn.train.lock): its holder's pid, host, start time
            continue
        if path.name.endswith(".tmp"):
            assert path.name.startswith("."), path  # a temp file of an interrupted atomic write
            continue
        names.add(path.name)
        if path.suffix == ".json":
            json.loads(path.read_text())  # complete JSON, or this raises
        elif path.suffix == ".safetensors":
            with safe_open(str(path), framework="pt") as handle:
                for key in handle.keys():  # noqa: SIM118  (safe_open has no __iter__)
                    handle.get_tensor(key)
        else:
            pytest.fail(f"unexpected file {path}")
    for name in names:
        if name.endswith(".json"):
            load_checkpoint(out / name)  # the pair is consistent: size and SHA-256 verified
    assert names & {"last.json", "previous.json"} or not names, f"no complete checkpoint in {sorted(names)}"


def _kill_mid_run(out: Path, rng: random.Random, after_step: int) -> tuple[int, str, bool]:
    """Start the run, wait until it saved past ``after_step``, SIGKILL it at a random moment.

    Returns the step of the checkpoint left behind, the run's stderr and whether the kill landed (a fast machine
    may finish the run first; that is only allowed once its last checkpoint is the final step).
    """
    proc = subprocess.Popen(_command(out), env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while _saved_step(out) <= after_step and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.005)
        time.sleep(rng.uniform(0.0, 0.05))  # anywhere: mid-step, mid-checkpoint-write, mid-evaluation
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.stderr is not None
    log = proc.stderr.read()
    if proc.returncode not in (0, -signal.SIGKILL):
        pytest.fail(f"run failed before it could be killed (exit {proc.returncode}): {log[-2000:]}")
    return _saved_step(out), log, proc.returncode == -signal.SIGKILL


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> Checkpoint:
    """The uninterrupted run's final checkpoint."""
    out = tmp_path_factory.mktemp("reference")
    _run_to_end(out)
    return load_checkpoint(out / "final")


def _assert_same_weights(reference: Checkpoint, resumed: Checkpoint) -> None:
    ref_state, got_state = reference.model.state_dict(), resumed.model.state_dict()
    assert ref_state.keys() == got_state.keys()
    for key, value in ref_state.items():
        assert torch.equal(value, got_state[key]), f"{key} differs after kill + resume"


def test_sigkill_and_resume_equals_uninterrupted_run(tmp_path: Path, reference: Checkpoint) -> None:
    out = tmp_path / "killed"
    rng = random.Random(8)
    step, forced_fallback = -1, None
    total_steps = int(reference.metrics["steps"])
    for i in range(KILLS):
        new_step, log, killed = _kill_mid_run(out, rng, step)
        if not killed:  # the run outpaced the kill; it must then have finished cleanly
            assert new_step == total_steps, log
            break
        if forced_fallback == i - 1:  # this run had to start from ``previous``
            assert "resuming from" in log and "previous" in log, log
        step = max(step, new_step)
        _assert_no_partial_files(out)
        if step >= total_steps:
            break
        if forced_fallback is None and i < KILLS - 1 and (out / "previous.json").is_file():
            # The worst moment of a save, made certain: the old last.json is gone, the new one not yet written.
            (out / "last.json").unlink(missing_ok=True)
            (out / ".last.safetensors.XXXX.tmp").write_bytes(b"partial")
            forced_fallback = i
    assert step > 0, "the kills left no checkpoint to resume from"
    assert forced_fallback is not None, "never had a previous checkpoint to fall back to"
    log = _run_to_end(out)
    assert "resuming from" in log
    _assert_no_partial_files(out)
    assert not list(out.glob(".*.tmp")), "the resumed run should remove stale temp files"

    resumed = load_checkpoint(out / "final")
    _assert_same_weights(reference, resumed)
    for key in ("train_acc", "train_loss", "eval_acc", "steps"):
        assert resumed.metrics[key] == reference.metrics[key], key
