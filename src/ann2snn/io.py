"""Atomic file writes: a reader sees either the old file or the complete new one, never a partial file.

Everything ann2snn writes (checkpoints, reports, exports, CSV) goes through these helpers. The data is written to a
temporary file in the destination's directory, flushed and fsync'ed, then moved onto the destination with
:func:`os.replace` (atomic on POSIX and Windows). On error the temporary file is removed and the destination is
left untouched.

Example:
    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> atomic_write_text(d / "a.txt", "hello")
    >>> (d / "a.txt").read_text()
    'hello'
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

__all__ = ["atomic_path", "atomic_write_bytes", "atomic_write_text"]

_DEFAULT_MODE = 0o644


def _fsync_file(path: Path) -> None:
    with open(path, "rb") as handle:
        os.fsync(handle.fileno())


def _fsync_dir(directory: Path) -> None:
    """Persist the rename itself (best effort: not every OS/filesystem lets a directory be opened)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success it is fsync'ed and moved onto ``path``.

    Write the complete file to the yielded path inside the ``with`` block (with any writer: ``open``,
    ``safetensors.torch.save_file``, ``matplotlib.savefig``, ...). If the block raises, the temporary file is
    removed and ``path`` keeps its old content (or stays absent). Missing parent folders are created.

    Args:
        path: The destination file.

    Yields:
        The temporary file path (an empty file already exists there).
    """
    target = Path(path)
    if target.is_dir():
        raise IsADirectoryError(f"cannot write file {target}: it is a directory")
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        # mkstemp creates files readable by the owner only; give the result ordinary permissions.
        mode = target.stat().st_mode & 0o777 if target.exists() else _DEFAULT_MODE
        os.chmod(tmp, mode)
        _fsync_file(tmp)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise
    _fsync_dir(target.parent)


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (see :func:`atomic_path`)."""
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        handle.write(data)


def atomic_write_text(path: str | os.PathLike[str], text: str, encoding: str = "utf-8") -> None:
    """Write ``text`` to ``path`` atomically with ``encoding`` and ``\\n`` line endings."""
    with atomic_path(path) as tmp, open(tmp, "w", encoding=encoding, newline="\n") as handle:
        handle.write(text)
