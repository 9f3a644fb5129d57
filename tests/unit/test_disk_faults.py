"""Real faults while writing: a full disk (a small tmpfs, root only) and SIGKILL at every step of a save.

The guarantee under test: after any failure or kill, the checkpoint at a path is the old one or the new one,
complete and loadable; the next save of it leaves exactly ``X.json`` and ``X.safetensors`` behind.
"""

from __future__ import annotations

import errno
import json
import os
import random
import shutil
import signal
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import torch
from torch import nn
from typer.testing import CliRunner

import ann2snn as a2s
from ann2snn.cli import app
from ann2snn.errors import CheckpointError, OutputError
from ann2snn.io import atomic_write_text
from ann2snn.recovery import keep_previous

torch.set_num_threads(1)
fork_only = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")


def _linear(seed: int, width: int = 64) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Linear(width, width)


def _weights(stem: Path, width: int = 64) -> torch.Tensor:
    return a2s.load_checkpoint(stem, model=nn.Linear(width, width)).model.weight.detach()


def _files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


@pytest.fixture
def tiny_tmpfs(tmp_path: Path) -> Iterator[Path]:
    """A 1 MiB tmpfs (root only; skipped where mounting is not permitted)."""
    mnt = tmp_path / f"tmpfs-{uuid.uuid4().hex[:6]}"
    mnt.mkdir()
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a tmpfs needs root")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mnt)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", str(mnt)], check=False)


# ------------------------------------------------------------------------------------------------ full disk
def test_save_over_a_checkpoint_on_a_full_disk_keeps_the_old_one(tiny_tmpfs: Path) -> None:
    old = _linear(0, 300)  # ~360 KB of weights: the old pair and a new one do not both fit next to the filler
    a2s.save_checkpoint(tiny_tmpfs / "ck", old)
    (tiny_tmpfs / "filler").write_bytes(b"\0" * (shutil.disk_usage(tiny_tmpfs).free - 100_000))
    with pytest.raises(
        CheckpointError, match=r"cannot save checkpoint .*ck: no space left .*previous checkpoint"
    ) as info:
        a2s.save_checkpoint(tiny_tmpfs / "ck", _linear(1, 300))
    assert ".safetensors" in str(info.value.__cause__)  # the weights step failed
    assert _files(tiny_tmpfs) == ["ck.json", "ck.safetensors", "filler"]
    assert torch.equal(_weights(tiny_tmpfs / "ck", 300), old.weight)


def test_full_disk_at_the_json_step_keeps_the_old_one(tiny_tmpfs: Path) -> None:
    """The new weights fit but the new JSON does not: the staged weights are removed, the old pair stays."""
    old = _linear(0, 100)
    a2s.save_checkpoint(tiny_tmpfs / "ck", old)
    weights_size = (tiny_tmpfs / "ck.safetensors").stat().st_size
    pages = -(-weights_size // 4096) * 4096
    (tiny_tmpfs / "filler").write_bytes(b"\0" * (shutil.disk_usage(tiny_tmpfs).free - pages))
    with pytest.raises(CheckpointError, match="no space left") as info:
        a2s.save_checkpoint(tiny_tmpfs / "ck", _linear(1, 100), extra={"note": "x" * 10_000})
    assert "ck.json" in str(info.value.__cause__)  # the weights fitted: the JSON step failed
    assert _files(tiny_tmpfs) == ["ck.json", "ck.safetensors", "filler"]
    assert torch.equal(_weights(tiny_tmpfs / "ck", 100), old.weight)


def test_cli_export_on_a_full_disk_is_one_line(tiny_tmpfs: Path, tmp_path: Path) -> None:
    model = a2s.prepare(a2s.create_model("cnn", num_classes=10, in_channels=1, image_size=8), a2s.QuantConfig(levels=4))
    stem = a2s.save_checkpoint(tmp_path / "ck", model, quant=a2s.QuantConfig(levels=4), dataset="digits")
    (tiny_tmpfs / "filler").write_bytes(b"\0" * (shutil.disk_usage(tiny_tmpfs).free - 8192))
    result = CliRunner().invoke(app, ["export", "-c", str(stem), "-o", str(tiny_tmpfs / "m.nir"), "-T", "4"])
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "no space to write" in lines[0] and "m.nir" in lines[0], result.stderr
    assert _files(tiny_tmpfs) == ["filler"]


# ------------------------------------------------------------------------------------- SIGKILL at every step
_STEPS = ("replace", "unlink", "fsync", "link")


def _run_killed_at(step: int, action: Callable[[], None]) -> bool:
    """Run ``action`` in a forked child that SIGKILLs itself at its ``step``-th file-system call; True if killed."""
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        calls = [0]

        def hooked(real: Callable[..., object]) -> Callable[..., object]:
            def call(*args: object, **kwargs: object) -> object:
                calls[0] += 1
                if calls[0] == step:
                    os.kill(os.getpid(), signal.SIGKILL)
                return real(*args, **kwargs)

            return call

        for name in _STEPS:
            setattr(os, name, hooked(getattr(os, name)))
        try:
            action()
        finally:
            os._exit(0)
    _, status = os.waitpid(pid, 0)
    return os.WIFSIGNALED(status)


@fork_only
@pytest.mark.parametrize("legacy", [False, True], ids=["staged", "plain"])
def test_kill_at_every_step_of_a_save_leaves_old_or_new(tmp_path: Path, legacy: bool) -> None:
    old, new = _linear(0), _linear(1)
    step = 0
    while True:
        folder = tmp_path / f"k{step}"
        a2s.save_checkpoint(folder / "ck", old)
        if not legacy:  # start from a save that was killed between the JSON switch and the final rename
            sha = json.loads((folder / "ck.json").read_text())["weights"]["sha256"]
            os.replace(folder / "ck.safetensors", folder / f"ck.{sha[:16]}.safetensors")
            (folder / ".ck.json.p999999999.abc123.tmp").write_text("{")  # and a temp file of a dead writer
        step += 1
        killed = _run_killed_at(step, lambda f=folder: a2s.save_checkpoint(f / "ck", new))  # type: ignore[misc]
        loaded = _weights(folder / "ck")
        assert torch.equal(loaded, old.weight) or torch.equal(loaded, new.weight), f"kill at step {step}"
        if not killed:
            assert torch.equal(loaded, new.weight)
            break
        a2s.save_checkpoint(folder / "ck", _linear(2))  # the next save removes all debris
        assert _files(folder) == ["ck.json", "ck.safetensors"], f"kill at step {step}"
        assert torch.equal(_weights(folder / "ck"), _linear(2).weight)
    assert step >= 5  # the save really went through several steps


@fork_only
def test_kill_at_every_step_of_keep_previous(tmp_path: Path) -> None:
    step = 0
    while True:
        folder = tmp_path / f"k{step}"
        a2s.save_checkpoint(folder / "previous", _linear(0))
        a2s.save_checkpoint(folder / "last", _linear(1))
        step += 1
        killed = _run_killed_at(step, lambda f=folder: keep_previous(f / "last", f / "previous"))  # type: ignore[misc]
        loaded = _weights(folder / "previous")
        assert torch.equal(loaded, _linear(0).weight) or torch.equal(loaded, _linear(1).weight)
        assert torch.equal(_weights(folder / "last"), _linear(1).weight), "keep_previous touched last"
        if not killed:
            break
    assert step >= 4


@fork_only
def test_sigkill_loop_during_alternating_saves(tmp_path: Path) -> None:
    """25 kills at random moments while one process saves two models alternately: always one of them loads."""
    models = [_linear(0, 200), _linear(1, 200)]
    stem = tmp_path / "ck"
    a2s.save_checkpoint(stem, models[0])
    rng = random.Random(0)
    for kill in range(25):
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child
            try:
                i = 0
                while True:
                    a2s.save_checkpoint(stem, models[i % 2])
                    i += 1
            finally:
                os._exit(0)
        time.sleep(rng.uniform(0.001, 0.05))
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        loaded = _weights(stem, 200)
        assert any(torch.equal(loaded, m.weight) for m in models), f"kill {kill}: no loadable checkpoint"
    a2s.save_checkpoint(stem, models[1])
    assert _files(tmp_path) == ["ck.json", "ck.safetensors"]


# ------------------------------------------------------------------------------------- links (output policy)
def test_writing_through_a_symlink_replaces_its_target_and_keeps_the_link(tmp_path: Path) -> None:
    (tmp_path / "real").mkdir()
    (tmp_path / "real" / "report.md").write_text("old")
    (tmp_path / "report.md").symlink_to(tmp_path / "real" / "report.md")
    atomic_write_text(tmp_path / "report.md", "new")
    assert (tmp_path / "report.md").is_symlink() and (tmp_path / "real" / "report.md").read_text() == "new"
    assert _files(tmp_path / "real") == ["report.md"]


def test_a_dangling_symlink_gets_its_target_created(tmp_path: Path) -> None:
    (tmp_path / "out.json").symlink_to(tmp_path / "elsewhere" / "out.json")
    atomic_write_text(tmp_path / "out.json", "{}")
    assert (tmp_path / "out.json").is_symlink() and (tmp_path / "elsewhere" / "out.json").read_text() == "{}"


def test_a_checkpoint_saved_through_symlinks_loads(tmp_path: Path) -> None:
    store = tmp_path / "store"
    store.mkdir()
    a2s.save_checkpoint(store / "ck", _linear(0))
    for suffix in (".json", ".safetensors"):
        (tmp_path / f"ck{suffix}").symlink_to(store / f"ck{suffix}")
    a2s.save_checkpoint(tmp_path / "ck", _linear(1))
    assert all((tmp_path / f"ck{s}").is_symlink() for s in (".json", ".safetensors"))
    assert torch.equal(_weights(tmp_path / "ck"), _linear(1).weight)
    assert _files(store) == ["ck.json", "ck.safetensors"]


def test_any_output_on_a_full_disk_names_the_file_and_keeps_the_old_content(tiny_tmpfs: Path) -> None:
    target = tiny_tmpfs / "report.md"
    target.write_text("old")
    (tiny_tmpfs / "filler").write_bytes(b"\0" * shutil.disk_usage(tiny_tmpfs).free)
    with pytest.raises(OutputError, match=r"no space to write .*report\.md \([\d,]+ bytes free there") as info:
        atomic_write_text(target, "new " * 100_000)
    assert info.value.errno == errno.ENOSPC
    assert target.read_text() == "old" and _files(tiny_tmpfs) == ["filler", "report.md"]


def test_cli_report_on_a_full_disk_is_one_line(tiny_tmpfs: Path, tmp_path: Path) -> None:
    model = a2s.prepare(a2s.create_model("cnn", num_classes=10, in_channels=1, image_size=8), a2s.QuantConfig(levels=4))
    stem = a2s.save_checkpoint(tmp_path / "ck", model, quant=a2s.QuantConfig(levels=4), dataset="digits")
    (tiny_tmpfs / "filler").write_bytes(b"\0" * shutil.disk_usage(tiny_tmpfs).free)
    result = CliRunner().invoke(app, ["convert", "-c", str(stem), "--json", str(tiny_tmpfs / "summary.json")])
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "no space to write" in lines[0] and "summary.json" in lines[0], result.stderr
    assert _files(tiny_tmpfs) == ["filler"]


def test_a_checkpoint_whose_name_looks_staged_is_not_debris(tmp_path: Path) -> None:
    a2s.save_checkpoint(tmp_path / "ck.0123456789abcdef", _linear(0))
    a2s.save_checkpoint(tmp_path / "ck", _linear(1))
    assert torch.equal(_weights(tmp_path / "ck.0123456789abcdef"), _linear(0).weight)
