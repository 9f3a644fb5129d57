"""Progress output of the training loop: a rich progress bar, plain per-epoch lines (CI logs) or silence.

Off a terminal a running epoch also prints a line every ``EVERY_SECONDS``
(``training (epoch 2 of 12), steps: 14/21 (10 s)``), so a log never stays silent through a long epoch.
"""

from __future__ import annotations

import os
import sys
from typing import Any


class _Reporter:
    """A rich progress bar on a terminal; plain per-epoch lines on stderr otherwise (CI logs); or silence."""

    def __init__(self, enabled: bool, epochs: int) -> None:
        self.enabled, self.epochs = enabled, epochs
        ci = os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")
        self.bar: Any = None
        self.task: Any = None
        self.lines: Any = None
        if enabled and sys.stderr.isatty() and not ci:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            self.bar = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeRemainingColumn(),
                console=Console(stderr=True),
                transient=True,
            )
            self.bar.start()

    def note(self, text: str) -> None:
        if self.enabled:
            self._print(text)

    def _print(self, text: str) -> None:
        if self.bar is not None:
            self.bar.console.print(text, highlight=False, markup=False)
        else:
            print(text, file=sys.stderr, flush=True)

    def start_epoch(self, epoch: int, steps: int, done: int) -> None:
        if self.bar is not None:
            if self.task is not None:
                self.bar.remove_task(self.task)
            self.task = self.bar.add_task(f"epoch {epoch + 1}/{self.epochs}", total=steps, completed=done)
        elif self.enabled:
            from ann2snn.evaluate.progress import _Lines

            self._end_lines()
            self.lines = _Lines(f"training (epoch {epoch + 1} of {self.epochs}), steps", steps, done=done, final=False)

    def advance(self) -> None:
        if self.bar is not None and self.task is not None:
            self.bar.advance(self.task)
        if self.lines is not None:
            self.lines.advance()

    def _end_lines(self) -> None:
        if self.lines is not None:
            self.lines.end()
            self.lines = None

    def end_epoch(self, row: dict[str, Any]) -> None:
        self._end_lines()
        if not self.enabled:
            return
        eval_part = "" if row["eval_acc"] is None else f"  eval_acc {row['eval_acc']:.2%}"
        self._print(
            f"epoch {row['epoch']}/{self.epochs}  loss {row['loss']:.4f}  train_acc {row['train_acc']:.2%}"
            f"{eval_part}  lr {row['lr']:.3g}  {row['seconds']:.1f}s"
        )

    def close(self) -> None:
        self._end_lines()
        if self.bar is not None:
            self.bar.stop()
            self.bar = None
