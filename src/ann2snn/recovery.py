"""Crash recovery for training checkpoints: keep a second complete checkpoint, clean up after killed writers.

:func:`ann2snn.export.checkpoint.save_checkpoint` switches a checkpoint's two files atomically, so a kill in the
middle of a save leaves the old or the new checkpoint loadable. The training loop still keeps ``previous``, a
complete copy of ``last`` made just before ``last`` is rewritten (:func:`keep_previous`; hard links, so it costs no
I/O), as a fallback should ``last`` ever be unreadable; :func:`resume_candidates` lists the complete ones newest
first, and :func:`remove_stale_temps` deletes what killed writers left.

Example:
    >>> import tempfile, pathlib
    >>> from torch import nn
    >>> from ann2snn.export.checkpoint import save_checkpoint
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> _ = save_checkpoint(d / "last", nn.Linear(2, 2))
    >>> keep_previous(d / "last", d / "previous")
    >>> [p.name for p in resume_candidates(d / "last", d / "previous")]
    ['last', 'previous']
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
from pathlib import Path

from ann2snn.errors import CheckpointError
from ann2snn.export.checkpoint import checkpoint_exists, checkpoint_files
from ann2snn.export.checkpoint_pair import install_pair, locate_weights
from ann2snn.io import stale_temps
from ann2snn.safeload import load_json_file

__all__ = ["keep_previous", "remove_stale_temps", "resume_candidates"]


def _link_into(src: Path, tmp: Path) -> None:
    """Make ``tmp`` hold ``src``'s content: a hard link where the filesystem allows, else a copy."""
    tmp.unlink()
    try:
        os.link(src, tmp)
    except OSError:
        shutil.copyfile(src, tmp)


def _vouched_weights(stem: str | os.PathLike[str]) -> tuple[Path, str, str] | None:
    """``(weights file, sha256, json text)`` of a complete checkpoint, or ``None`` if it is absent or unreadable."""
    weights, json_path = checkpoint_files(stem)
    try:
        meta = load_json_file(json_path)
        text = json_path.read_text(encoding="utf-8")
    except (CheckpointError, OSError, UnicodeDecodeError):
        return None
    sha = meta.get("weights", {}).get("sha256") if isinstance(meta, dict) else None
    if not isinstance(sha, str) or re.fullmatch("[0-9a-f]{64}", sha) is None:
        return None
    located = locate_weights(weights, sha)
    return (located, sha, text) if located.is_file() else None


def keep_previous(current: str | os.PathLike[str], previous: str | os.PathLike[str]) -> None:
    """Make checkpoint ``previous`` a complete copy of checkpoint ``current`` (no-op if ``current`` is incomplete).

    ``previous`` switches atomically like any checkpoint save (the old ``previous`` stays loadable until the new
    one is complete); ``current`` is not touched.
    """
    source = _vouched_weights(current)
    if source is None:
        return
    src, sha, text = source
    target = _vouched_weights(previous)
    if target is not None and target[1] == sha and os.path.samefile(target[0], src):
        return  # already the same files
    dst_weights, dst_json = checkpoint_files(previous)
    install_pair(dst_weights, dst_json, lambda tmp: _link_into(src, tmp), sha, src.stat().st_size, text)


def resume_candidates(*stems: str | os.PathLike[str]) -> list[Path]:
    """The given checkpoint stems that are complete (their ``.json`` exists), in the order given."""
    return [Path(s) for s in stems if checkpoint_exists(s)]


def remove_stale_temps(folder: str | os.PathLike[str], names: tuple[str, ...]) -> list[Path]:
    """Delete temporary files ``.<name>.*.tmp`` that killed writers left in ``folder``; returns them.

    A temporary file whose writer process still runs is kept (see :func:`ann2snn.io.stale_temps`).
    """
    removed: list[Path] = []
    for path in stale_temps(folder, "|".join(re.escape(name) for name in names)):
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
            removed.append(path)
    return removed
