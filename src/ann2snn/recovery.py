"""Crash recovery for training checkpoints: always keep one complete checkpoint on disk.

:func:`ann2snn.export.checkpoint.save_checkpoint` writes a checkpoint as two atomic files and removes the old
``.json`` first, so a kill in the middle of a save leaves no *wrong* checkpoint, but for a moment no complete one
either. Before overwriting ``last``, the training loop therefore calls :func:`keep_previous`, which makes
``previous`` a complete copy of ``last`` (hard links, so it costs no I/O). At every instant at least one of the two
is complete, and :func:`resume_candidates` lists them newest first.

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
import tempfile
from pathlib import Path

from ann2snn.export.checkpoint import checkpoint_exists, checkpoint_files
from ann2snn.io import atomic_write_bytes

__all__ = ["keep_previous", "remove_stale_temps", "resume_candidates"]


def _link_or_copy(src: Path, dst: Path) -> None:
    """Make ``dst`` hold ``src``'s content, atomically: a hard link renamed into place, or an atomic copy."""
    if dst.exists() and os.path.samefile(src, dst):
        return  # already the same file: renaming a second link onto it would be a no-op that leaves the link behind
    fd, tmp_name = tempfile.mkstemp(prefix=f".{dst.name}.", suffix=".tmp", dir=dst.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        tmp.unlink()
        os.link(src, tmp)
        os.replace(tmp, dst)
    except OSError:  # no hard links on this filesystem: copy instead
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        atomic_write_bytes(dst, src.read_bytes())


def keep_previous(current: str | os.PathLike[str], previous: str | os.PathLike[str]) -> None:
    """Make checkpoint ``previous`` a complete copy of checkpoint ``current`` (no-op if ``current`` is incomplete).

    The old ``previous.json`` is removed first and written last, so ``previous`` is never a mismatched pair;
    ``current`` is not touched, so it stays complete throughout.
    """
    src_weights, src_json = checkpoint_files(current)
    dst_weights, dst_json = checkpoint_files(previous)
    if not src_json.is_file() or not src_weights.is_file():
        return
    with contextlib.suppress(FileNotFoundError):
        dst_json.unlink()
    _link_or_copy(src_weights, dst_weights)
    _link_or_copy(src_json, dst_json)


def resume_candidates(*stems: str | os.PathLike[str]) -> list[Path]:
    """The given checkpoint stems that are complete (their ``.json`` exists), in the order given."""
    return [Path(s) for s in stems if checkpoint_exists(s)]


def remove_stale_temps(folder: str | os.PathLike[str], names: tuple[str, ...]) -> list[Path]:
    """Delete temporary files ``.<name>.*.tmp`` that a killed writer left in ``folder``; returns them.

    Call only while no other process writes these files (e.g. when a single training run resumes).
    """
    removed: list[Path] = []
    base = Path(folder)
    if not base.is_dir():
        return removed
    for name in names:
        for path in base.glob(f".{name}.*.tmp"):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
                removed.append(path)
    return removed
