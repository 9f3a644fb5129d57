"""The ``ann2snn`` command line: a thin typer layer over the public API.

Each command lives in its own module that registers on :data:`ann2snn.cli.app.app`; importing this package
imports them all.
"""

from ann2snn.cli import (  # noqa: F401
    check_cmd,
    compare_cmd,
    convert_cmd,
    demo_cmd,
    evaluate_cmd,
    export_cmd,
    robustness_cmd,
    train_cmd,  # noqa: F401  (registers ``train``)
)
from ann2snn.cli.app import app, main

__all__ = ["app", "main"]
