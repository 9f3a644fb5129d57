"""Progress of long steps: a rich bar on a terminal, plain lines with elapsed seconds in logs, or silence.

On an interactive terminal (stderr is a TTY and ``CI`` is unset) :func:`progress_bar` shows a rich bar with the
step's description, a count, the total and an ETA, and :func:`phase` a spinner with the elapsed time; bars opened
inside one another share one live display. Anywhere else (pipes, files, CI) each step writes one line to stderr
when it ends, ``"<description>: 12/12 in 3.4 s"``, if it took at least :data:`MIN_SECONDS`, and a line every
:data:`EVERY_SECONDS` while it runs, so a log is never silent for long. ``enabled=False`` prints nothing.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Callable, Generator, Iterable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

T = TypeVar("T")

MIN_SECONDS = 2.0  # plain output: steps faster than this print nothing
EVERY_SECONDS = 10.0  # plain output: a running step prints a line at least this often

_live: list[Any] = []  # the shared rich Progress while a bar is open (at most one)


def interactive() -> bool:
    """True when a live progress bar makes sense (a TTY, and not CI)."""
    ci = os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")
    return sys.stderr.isatty() and not ci


def note(text: str) -> None:
    """One progress line on stderr (printed above a live bar when one is open)."""
    if _live:
        _live[0].console.print(text, highlight=False, markup=False)
    else:
        print(text, file=sys.stderr, flush=True)


@contextmanager
def _rich_task(description: str, total: int | None) -> Iterator[Callable[[], None]]:
    """A task on the shared rich display (started here when none is open); yields its ``advance``."""
    own = not _live
    if own:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            SpinnerColumn,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        bar = Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            console=Console(stderr=True),
            transient=True,
        )
        bar.start()
        _live.append(bar)
    bar = _live[0]
    task = bar.add_task(description, total=total)
    try:
        yield lambda: bar.advance(task)
    finally:
        bar.remove_task(task)
        if own:
            bar.stop()
            _live.clear()


class _Lines:
    """Plain progress lines for one step: a line every EVERY_SECONDS while it runs (from a ticker thread, so a
    slow item does not silence it), one when it ends."""

    def __init__(self, description: str, total: int | None, *, done: int = 0, final: bool = True) -> None:
        self.description, self.total, self.final = description, total, final
        self.done = done
        self.start = self.last = time.perf_counter()
        self.printed = False
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._tick, daemon=True)
        self._thread.start()

    def _count(self) -> str:
        if self.total is None:
            return f"{self.done}" if self.done else ""
        return f"{self.done}/{self.total}"

    def _tick(self) -> None:
        while not self._stop.wait(min(1.0, EVERY_SECONDS)):
            with self._lock:
                now = time.perf_counter()
                if now - self.last >= EVERY_SECONDS:
                    self.last, self.printed = now, True
                    note(f"{self.description}: {self._count() or 'running'} ({now - self.start:.0f} s)")

    def advance(self) -> None:
        with self._lock:
            self.done += 1

    def end(self, failed: bool = False) -> None:
        self._stop.set()
        self._thread.join()
        elapsed = time.perf_counter() - self.start
        if self.final and not failed and (self.printed or elapsed >= MIN_SECONDS):
            count = self._count()
            finished = self.total is None or self.done >= self.total
            verb = "done in" if finished else "stopped after"
            note(f"{self.description}: {count + ' ' if count else ''}{verb} {elapsed:.1f} s")


def progress_bar(
    items: Iterable[T], description: str, *, enabled: bool = True, total: int | None = None
) -> Generator[T, None, None]:
    """Iterate ``items``, reporting progress as the module docstring says (``total`` defaults to ``len(items)``).

    Loop over it inside ``with contextlib.closing(progress_bar(...)) as items:`` so that an error in the loop body
    ends the step at once (off a terminal the step's ticker thread otherwise runs until the generator is freed).
    """
    if not enabled:
        yield from items
        return
    if total is None and hasattr(items, "__len__"):
        total = len(items)  # type: ignore[arg-type]
    if interactive():
        with _rich_task(description, total) as advance:
            for item in items:
                yield item
                advance()
        return
    lines = _Lines(description, total)
    try:
        for item in items:
            yield item
            lines.advance()
    except GeneratorExit:  # closed by the caller: after a break, or an error in its loop (wrap in closing())
        lines.end()
        raise
    except BaseException:
        lines.end(failed=True)
        raise
    lines.end()


@contextmanager
def phase(description: str, *, enabled: bool = True) -> Iterator[None]:
    """Report one step that has no count (building, writing files): a spinner, or plain lines (see module)."""
    if not enabled:
        yield
        return
    if interactive():
        with _rich_task(description, None):
            yield
        return
    lines = _Lines(description, None)
    try:
        yield
    except BaseException:
        lines.end(failed=True)
        raise
    lines.end()


__all__ = ["EVERY_SECONDS", "MIN_SECONDS", "interactive", "note", "phase", "progress_bar"]
