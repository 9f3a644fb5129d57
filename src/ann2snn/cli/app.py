"""The typer application every command registers on, and its error handling.

Command modules do ``from ann2snn.cli.app import app`` and decorate functions with ``@app.command()``; the
package ``ann2snn.cli`` imports them. Whatever goes wrong is reported as one line on stderr:

- an :class:`~ann2snn.errors.Ann2SnnError` or a file-system error: ``error: <message>``, exit code 2;
- a usage error (unknown option, ``--levels abc``, a missing option): ``error: <message>; see '... --help'``,
  exit code 2;
- Ctrl-C: ``interrupted: <what to do>``, exit code 130.

``--debug`` prints the full traceback of ann2snn errors as well (the exit code stays 2) and lets Ctrl-C and
warnings through unchanged. Integer options whose name is a row of
:data:`ann2snn.limits.INT_RANGES` (``--timesteps``, ``--levels``, ``--seed``, ``--batch-size``, ...) are checked
against that range before the command runs, and their help shows it. Warnings logged while a command runs are
printed as ``warning: ...`` lines after it succeeds, and dropped when it fails (the error line is the answer).
"""

from __future__ import annotations

import logging
import sys
import traceback
import warnings
from collections.abc import Sequence
from typing import Any

import typer
from typer.core import TyperGroup

from ann2snn.errors import Ann2SnnError
from ann2snn.limits import INT_RANGES, check_int, describe_range

__all__ = ["EXIT_INTERRUPTED", "EXIT_USER_ERROR", "Interrupted", "app", "main"]

EXIT_USER_ERROR = 2
EXIT_INTERRUPTED = 130


class Interrupted(KeyboardInterrupt):
    """A Ctrl-C that a command caught to say what it leaves behind (printed as ``interrupted: <message>``)."""


def error_line(exc: BaseException) -> str:
    """``error: <message>`` on a single line."""
    message = " ".join(str(exc).split()) or type(exc).__name__
    return f"error: {message}"


def _range_callback(option: str, key: str, previous: Any) -> Any:
    """A parameter callback that checks an integer option against ``INT_RANGES[key]`` (``None`` passes)."""

    def callback(ctx: Any, param: Any, value: Any) -> Any:
        if previous is not None:
            value = previous(ctx, param, value)
        check_int(option, value, key=key, none_ok=True)
        return value

    return callback


def _add_ranges(command: Any) -> None:
    """Check and document the range of every integer option of ``command`` that has a row in ``INT_RANGES``."""
    for param in getattr(command, "params", []):
        descriptor = getattr(param, "type_descriptor", None)
        longs = [o for o in getattr(param, "opts", []) if o.startswith("--")]
        if getattr(descriptor, "annotation", None) is not int or not longs:
            continue
        key = longs[0][2:].replace("-", "_")
        if key not in INT_RANGES or getattr(param, "_ann2snn_range", False):
            continue
        param.callback = _range_callback(longs[0], key, param.callback)
        param.help = f"{param.help or ''} [{describe_range(key)}]".strip()
        param._ann2snn_range = True


class _HeldWarnings(logging.Handler):
    """Collects the ``ann2snn`` logger's warnings while a command runs."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def _usage_line(exc: Any) -> str:
    """One line for a typer/click usage error, pointing at the command's ``--help``."""
    message = " ".join(str(exc.format_message()).split()).rstrip(".")
    ctx = getattr(exc, "ctx", None)
    path = getattr(ctx, "command_path", None) or "ann2snn"
    return f"error: {message}; see '{path} --help'"


class _Group(TyperGroup):
    """Turns ann2snn errors (and file-system errors: bad path, permissions, disk full) into one line and exit
    code 2 unless ``--debug`` was given; usage errors into one line and exit code 2; Ctrl-C into one line and 130."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for command in self.commands.values():
            _add_ranges(command)

    def main(
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        windows_expand_args: bool = True,
        **extra: Any,
    ) -> Any:
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, False, windows_expand_args, **extra)
        try:
            code = super().main(args, prog_name, complete_var, False, windows_expand_args, **extra)
        except typer.TyperException as exc:  # click's usage errors (ClickException and its subclasses)
            if type(exc).__name__ == "NoArgsIsHelpError":
                exc.show()  # type: ignore[attr-defined]
                sys.exit(getattr(exc, "exit_code", EXIT_USER_ERROR))
            from ann2snn.cli.launch import process_rank

            if process_rank() == 0:  # other torchrun / --nproc-per-node ranks stay quiet: rank 0 says it once
                print(_usage_line(exc), file=sys.stderr, flush=True)
            sys.exit(EXIT_USER_ERROR)
        except typer.Abort:
            print("error: aborted", file=sys.stderr, flush=True)
            sys.exit(1)
        sys.exit(code if isinstance(code, int) else 0)

    def invoke(self, ctx: Any) -> Any:
        debug = bool(ctx.params.get("debug"))  # parsed before invoke; ``_root`` stores it in ctx.obj
        logger = logging.getLogger("ann2snn")
        held = _HeldWarnings()
        propagate = logger.propagate
        if not debug:
            logger.addHandler(held)
            logger.propagate = False
        try:
            with warnings.catch_warnings(record=not debug) as caught:
                result = super().invoke(ctx)
        except (Ann2SnnError, OSError) as exc:
            from ann2snn.cli.launch import process_rank

            if process_rank() != 0:
                pass  # other torchrun / --nproc-per-node ranks stay quiet: rank 0 reports the same error once
            elif debug:
                traceback.print_exc()  # the traceback, but still the user-error exit code (1 is for bugs)
            else:
                print(error_line(exc), file=sys.stderr, flush=True)
            raise typer.Exit(EXIT_USER_ERROR) from None
        except KeyboardInterrupt as exc:
            if debug:
                raise
            detail = " ".join(str(exc).split()) if isinstance(exc, Interrupted) else "stopped by Ctrl-C"
            print(f"interrupted: {detail}", file=sys.stderr, flush=True)
            raise typer.Exit(EXIT_INTERRUPTED) from None
        finally:
            logger.removeHandler(held)
            logger.propagate = propagate
        for record in held.records:
            print(f"warning: {' '.join(record.getMessage().split())}", file=sys.stderr)
        for warning in caught or []:
            print(f"warning: {' '.join(str(warning.message).split())}", file=sys.stderr)
        return result


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
