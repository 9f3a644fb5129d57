"""The typer application every command registers on, and its error handling.

Command modules do ``from ann2snn.cli.app import app`` and decorate functions with ``@app.command()``; the
package ``ann2snn.cli`` imports them. An :class:`~ann2snn.errors.Ann2SnnError` raised by a command is printed as
one line ``error: <message>`` on stderr with exit code 2; ``--debug`` shows the full traceback instead.
"""

from __future__ import annotations

import sys
import traceback
from typing import Any

import typer
from typer.core import TyperGroup

from ann2snn.errors import Ann2SnnError

__all__ = ["EXIT_USER_ERROR", "app", "main"]

EXIT_USER_ERROR = 2


def error_line(exc: BaseException) -> str:
    """``error: <message>`` on a single line."""
    message = " ".join(str(exc).split()) or type(exc).__name__
    return f"error: {message}"


class _Group(TyperGroup):
    """Turns ann2snn errors (and file-system errors: bad path, permissions, disk full) into one line and exit
    code 2 unless ``--debug`` was given."""

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except (Ann2SnnError, OSError) as exc:
            if isinstance(ctx.obj, dict) and ctx.obj.get("debug"):
                traceback.print_exc()  # the traceback, but still the user-error exit code (1 is for bugs)
            else:
                print(error_line(exc), file=sys.stderr, flush=True)
            raise typer.Exit(EXIT_USER_ERROR) from None


app = typer.Typer(
    name="ann2snn",
    cls=_Group,
    help="Convert trained PyTorch ANNs into spiking neural networks.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)


@app.callback()
def _root(
    ctx: typer.Context,
    debug: bool = typer.Option(
        False, "--debug/--no-debug", help="Show full tracebacks with errors (exit code stays 2)."
    ),
) -> None:
    """Convert trained PyTorch ANNs into spiking neural networks."""
    ctx.obj = {"debug": debug}


def main(argv: list[str] | None = None) -> None:
    """Console entry point (``ann2snn`` and ``python -m ann2snn``)."""
    import ann2snn.cli  # noqa: F401  (registers the commands)

    app(args=argv, prog_name="ann2snn")
