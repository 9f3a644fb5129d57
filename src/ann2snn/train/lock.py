"""One training run per output folder: an advisory lock on ``OUT/.lock`` that names its holder.

:func:`train` holds the lock while it writes checkpoints into ``out_dir``; a second run into the same folder fails
at once with a :class:`~ann2snn.errors.ResourceError` saying which process (pid, host, start time) holds it,
instead of both runs overwriting each other's ``last`` checkpoint. The lock is an ``flock`` on the file, so the
kernel releases it when its process dies, however it dies: a lock left by a killed run is taken over by the next
one (``--resume`` then continues from its checkpoint). The file itself stays, holding the last holder's details.

Example:
    >>> import tempfile
    >>> d = tempfile.mkdtemp()
    >>> with out_dir_lock(d):
    ...     holder(d)["pid"] == os.getpid()
    True
"""

from __future__ import annotations

import contextlib
import datetime
import json
import os
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ann2snn.errors import ResourceError

try:  # POSIX; elsewhere runs are not locked
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

__all__ = ["LOCK_NAME", "holder", "out_dir_lock"]

LOCK_NAME = ".lock"
_MAX_LOCK_BYTES = 4096


def holder(out_dir: str | os.PathLike[str]) -> dict[str, Any] | None:
    """What the lock file of ``out_dir`` says about its (last) holder, or ``None`` if it is missing or unreadable."""
    try:
        with open(Path(out_dir) / LOCK_NAME, "rb") as f:
            data = json.loads(f.read(_MAX_LOCK_BYTES).decode("utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _describe(info: dict[str, Any] | None) -> str:
    if not info:
        return "another process (it wrote no details yet)"
    return f"pid {info.get('pid')!s} on host {info.get('host')!s}, running since {info.get('started')!s}"


@contextlib.contextmanager
def out_dir_lock(out_dir: str | os.PathLike[str]) -> Iterator[None]:
    """Hold the lock of ``out_dir`` (created if needed) for the ``with`` block.

    Raises:
        ResourceError: Another live process holds it; the message names its pid, host and start time.
    """
    folder = Path(out_dir)
    folder.mkdir(parents=True, exist_ok=True)
    if fcntl is None:  # pragma: no cover
        yield
        return
    fd = os.open(folder / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ResourceError(
                f"{folder} is in use by another training run ({_describe(holder(folder))}); wait for it to finish, "
                f"stop it, or train into another --out (out_dir=)"
            ) from None
        started = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
        info = {"pid": os.getpid(), "host": socket.gethostname(), "started": started}
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(info).encode("utf-8"), 0)
        yield
    finally:
        os.close(fd)  # releases the flock
