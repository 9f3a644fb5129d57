"""Atomic writes: complete files on success, untouched destination and no temp files on error."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from ann2snn.errors import OutputError
from ann2snn.io import atomic_path, atomic_write_bytes, atomic_write_text


def test_write_bytes_and_text(tmp_path: Path) -> None:
    atomic_write_bytes(tmp_path / "a.bin", b"\x00\x01")
    atomic_write_text(tmp_path / "sub" / "b.txt", "héllo\n")
    assert (tmp_path / "a.bin").read_bytes() == b"\x00\x01"
    assert (tmp_path / "sub" / "b.txt").read_text(encoding="utf-8") == "héllo\n"
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["a.bin", "b.txt", "sub"]


def test_overwrite_replaces_content_and_keeps_mode(tmp_path: Path) -> None:
    target = tmp_path / "a.txt"
    target.write_text("old")
    os.chmod(target, 0o600)
    atomic_write_text(target, "new")
    assert target.read_text() == "new"
    assert target.stat().st_mode & 0o777 == 0o600


def test_new_file_is_not_owner_only(tmp_path: Path) -> None:
    atomic_write_text(tmp_path / "a.txt", "x")
    assert (tmp_path / "a.txt").stat().st_mode & 0o044 == 0o044


def test_error_leaves_destination_and_no_temp_files(tmp_path: Path) -> None:
    target = tmp_path / "a.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError, match="boom"), atomic_path(target) as tmp:
        tmp.write_text("partial")
        raise RuntimeError("boom")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["a.txt"]


def test_error_on_new_file_creates_nothing(tmp_path: Path) -> None:
    with pytest.raises(KeyboardInterrupt), atomic_path(tmp_path / "new.txt") as tmp:
        tmp.write_text("partial")
        raise KeyboardInterrupt
    assert list(tmp_path.iterdir()) == []


def test_temp_file_lives_next_to_target(tmp_path: Path) -> None:
    with atomic_path(tmp_path / "x.json") as tmp:
        assert tmp.parent == tmp_path
        assert tmp.exists() and tmp != tmp_path / "x.json"
        tmp.write_text("{}")
    assert (tmp_path / "x.json").read_text() == "{}"
    assert not tmp.exists()


def test_directory_target_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(OutputError, match="is a directory"):
        atomic_write_text(tmp_path, "x")
