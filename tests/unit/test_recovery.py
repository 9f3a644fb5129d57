"""keep_previous / resume_candidates / remove_stale_temps: always one complete checkpoint, no temp files left."""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import nn

from ann2snn.export.checkpoint import load_checkpoint, save_checkpoint
from ann2snn.recovery import keep_previous, remove_stale_temps, resume_candidates


def _temps(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.glob(".*.tmp"))


def test_keep_previous_copies_a_complete_checkpoint(tmp_path: Path) -> None:
    model = nn.Linear(3, 2)
    save_checkpoint(tmp_path / "last", model)
    keep_previous(tmp_path / "last", tmp_path / "previous")
    save_checkpoint(tmp_path / "last", nn.Linear(3, 2))  # rewriting last leaves previous intact
    prev = load_checkpoint(tmp_path / "previous", model=nn.Linear(3, 2))
    assert torch.equal(prev.model.state_dict()["weight"], model.weight)
    assert [p.name for p in resume_candidates(tmp_path / "last", tmp_path / "previous")] == ["last", "previous"]
    assert _temps(tmp_path) == []


def test_keep_previous_twice_leaves_no_temp_file(tmp_path: Path) -> None:
    """A resumed run may call it again before ``last`` changed (previous is then the same file already)."""
    save_checkpoint(tmp_path / "last", nn.Linear(3, 2))
    keep_previous(tmp_path / "last", tmp_path / "previous")
    keep_previous(tmp_path / "last", tmp_path / "previous")
    assert _temps(tmp_path) == []
    load_checkpoint(tmp_path / "previous", model=nn.Linear(3, 2))


def test_keep_previous_without_a_complete_source_is_a_no_op(tmp_path: Path) -> None:
    keep_previous(tmp_path / "last", tmp_path / "previous")
    assert list(tmp_path.iterdir()) == []


def test_remove_stale_temps_only_removes_the_named_ones(tmp_path: Path) -> None:
    (tmp_path / ".last.safetensors.ab12.tmp").write_bytes(b"partial")
    (tmp_path / ".other.json.cd34.tmp").write_bytes(b"x")
    removed = remove_stale_temps(tmp_path, ("last.safetensors", "last.json"))
    assert [p.name for p in removed] == [".last.safetensors.ab12.tmp"]
    assert _temps(tmp_path) == [".other.json.cd34.tmp"]


def test_remove_stale_temps_keeps_a_live_writers_file(tmp_path: Path) -> None:
    live = tmp_path / f".last.json.p{os.getpid()}.ab12.tmp"
    dead = tmp_path / ".last.json.p999999999.cd34.tmp"
    live.write_text("{")
    dead.write_text("{")
    assert remove_stale_temps(tmp_path, ("last.json",)) == [dead]
    assert _temps(tmp_path) == [live.name]
