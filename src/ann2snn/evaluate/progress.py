"""Progress bars that stay quiet in CI logs and non-interactive runs."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")


def interactive() -> bool:
    """True when a live progress bar makes sense (a TTY, and not CI)."""
    return sys.stderr.isatty() and not os.environ.get("CI")


def progress_bar(
    items: Iterable[T], description: str, *, enabled: bool = True, total: int | None = None
) -> Iterator[T]:
    """Iterate ``items`` with a rich progress bar when ``enabled`` and interactive, else plainly."""
    if not (enabled and interactive()):
        yield from items
        return
    from rich.progress import track

    yield from track(items, description=description, total=total, transient=True)
