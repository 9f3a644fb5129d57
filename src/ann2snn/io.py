"""Atomic file writes: a reader sees either the old file or the complete new one, never a partial file.

Everything ann2snn writes (checkpoints, reports, exports, CSV) goes through these helpers. The data is written to a
temporary file in the destination's directory, flushed and fsync'ed, then moved onto the destination with
:func:`os.replace` (atomic on POSIX and Windows). On error the temporary file is removed and the destination is
left untouched.

Output path policy:

* A symbolic link is followed: the file it points to is replaced atomically and the link itself stays (a dangling
  link gets its target created). This is what writing with ``open(path, "w")`` would do, but without the window
  in which the target is truncated.
* A directory, FIFO, socket or device is refused with :class:`~ann2snn.errors.OutputError`: atomic replacement
  would silently turn it into a regular file (and a FIFO's reader would never see the data).

A full disk is an :class:`~ann2snn.errors.OutputError` naming the file and the free space (its ``errno`` is
``ENOSPC``); the destination keeps its old content.

Temporary files are named ``.<name>.p<pid>.<random>.tmp``. A writer killed by SIGKILL cannot remove its own;
:func:`stale_temps` finds those whose process is gone so the next writer of the same file can delete them.

Example:
    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> atomic_write_text(d / "a.txt", "hello")
    >>> (d / "a.txt").read_text()
    'hello'
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import shutil
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path

from ann2snn.errors import OutputError

__all__ = ["atomic_path", "atomic_write_bytes", "atomic_write_text", "fsync_dir", "output_target", "stale_temps"]

_DEFAULT_MODE = 0o644
_TEMP_RE = re.compile(r"^\.(?P<name>.+?)\.(?:p(?P<pid>\d+)\.)?[^.]+\.tmp$")


def _fsync_file(path: Path) -> None:
    with open(path, "rb") as handle:
        os.fsync(handle.fileno())


def fsync_dir(directory: Path) -> None:
    """Persist a rename in ``directory`` (best effort: not every OS/filesystem lets a directory be opened)."""
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


def output_target(path: str | os.PathLike[str]) -> Path:
    """The regular file that writing ``path`` replaces: symbolic links resolved, anything else refused.

    Raises:
        OutputError: ``path`` (or what it links to) is a directory, FIFO, socket or device.
    """
    given = Path(path)
    target = Path(os.path.realpath(given)) if given.is_symlink() else given
    try:
        mode = target.stat().st_mode
    except OSError:  # absent (or unreachable: the write itself then reports why)
        return target
    if stat.S_ISREG(mode):
        return target
    via = f" (the link {given} points to it)" if target != given else ""
    if stat.S_ISDIR(mode):
        raise OutputError(f"cannot write file {target}{via}: it is a directory; pass a file path inside it")
    kind = "a FIFO" if stat.S_ISFIFO(mode) else "a socket" if stat.S_ISSOCK(mode) else "a device or special file"
    raise OutputError(
        f"refusing to write {target}{via}: it is {kind}, not a regular file; ann2snn replaces outputs atomically "
        "and would turn it into a regular file. Pass the path of a regular file (or a new one)"
    )


_NO_SPACE = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)


def _no_space(target: Path, exc: OSError) -> OutputError:
    """An :class:`OutputError` naming ``target`` and the free space, keeping ``exc.errno`` for callers."""
    try:
        free = f"{shutil.disk_usage(target.parent).free:,} bytes free there"
    except OSError:
        free = "free space unknown"
    error = OutputError(
        f"no space to write {target} ({free}; {exc.strerror or exc}); its previous content (if any) is unchanged. "
        "Free some space or write elsewhere"
    )
    error.errno = exc.errno
    return error


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # exists but belongs to someone else
        return True
    return True


def stale_temps(folder: str | os.PathLike[str], name_pattern: str) -> list[Path]:
    """Temporary files in ``folder`` left by killed writers of files whose name fully matches ``name_pattern``.

    A temporary file whose writer process still runs is not stale; one whose name carries no process id (written
    by an older ann2snn) is.
    """
    base = Path(folder)
    if not base.is_dir():
        return []
    wanted = re.compile(name_pattern)
    found: list[Path] = []
    for path in base.iterdir():
        match = _TEMP_RE.match(path.name)
        if match is None or not wanted.fullmatch(match["name"]):
            continue
        pid = match["pid"]
        if pid is not None and _pid_alive(int(pid)):
            continue
        found.append(path)
    return found


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success it is fsync'ed and moved onto ``path``.

    Write the complete file to the yielded path inside the ``with`` block (with any writer: ``open``,
    ``safetensors.torch.save_file``, ``matplotlib.savefig``, ...). If the block raises, the temporary file is
    removed and ``path`` keeps its old content (or stays absent). Missing parent folders are created. A symbolic
    link is followed (see the module docstring).

    Args:
        path: The destination file.

    Yields:
        The temporary file path (an empty file already exists there).

    Raises:
        OutputError: ``path`` is a directory, FIFO, socket or device.
    """
    target = output_target(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.p{os.getpid()}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        # mkstemp creates files readable by the owner only; give the result ordinary permissions.
        mode = target.stat().st_mode & 0o777 if target.exists() else _DEFAULT_MODE
        os.chmod(tmp, mode)
        _fsync_file(tmp)
        os.replace(tmp, target)
    except BaseException as exc:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        if isinstance(exc, OSError) and exc.errno in _NO_SPACE and not isinstance(exc, OutputError):
            raise _no_space(target, exc) from exc
        raise
    fsync_dir(target.parent)


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (see :func:`atomic_path`)."""
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        handle.write(data)


def atomic_write_text(path: str | os.PathLike[str], text: str, encoding: str = "utf-8") -> None:
    """Write ``text`` to ``path`` atomically with ``encoding`` and ``\\n`` line endings."""
    with atomic_path(path) as tmp, open(tmp, "w", encoding=encoding, newline="\n") as handle:
        handle.write(text)
