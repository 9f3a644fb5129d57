"""The accepted range of every integer setting, and of the float settings that become float32 tensors.

Each integer that reaches ann2snn, through a config class, a keyword argument or a command-line option, is checked
against one row of :data:`INT_RANGES` before it is used, so a huge value (``levels=10**400``, ``seed=2**64``,
``presteps=10**6``) fails at once with a :class:`~ann2snn.errors.ConfigError` naming the setting and its range
instead of an ``OverflowError`` deep inside torch or an unbounded run. The bounds are far above any useful value;
they exist to keep arithmetic exact and run time and memory bounded.

Example:
    >>> check_int("levels", 16)
    16
    >>> check_int("levels", 10**400)
    Traceback (most recent call last):
    ...
    ann2snn.errors.ConfigError: levels=<401-digit integer> is out of range: must be an integer in 1..65536
"""

from __future__ import annotations

import math
import operator
from typing import Any

from ann2snn.errors import ConfigError

__all__ = [
    "FLOAT32_SAFE",
    "INT_RANGES",
    "MAX_SEED",
    "as_int",
    "check_float32",
    "check_int",
    "check_timesteps",
    "describe_range",
]

MAX_SEED = 2**63 - 1
"""Largest seed: ``torch.manual_seed`` takes 64-bit values and ann2snn derives per-epoch/per-batch seeds from it."""

FLOAT32_SAFE = 1e6
"""Magnitude bound of float settings that become float32 tensors (thresholds, steps, leaks): far from float32's
3.4e38, so products with levels and time steps stay finite."""

# name: (low, high, what it is). Names are the config field / keyword; the CLI option is ``--name-with-dashes``.
INT_RANGES: dict[str, tuple[int, int, str]] = {
    "timesteps": (1, 1_000_000, "simulation steps T"),
    "presteps": (0, 4_096, "pre-simulation steps of SRP/COS (latency presteps + T)"),
    "levels": (1, 65_536, "quantization levels L of QCFS"),
    "steps": (1, 65_536, "StepReLU steps n"),
    "seed": (0, MAX_SEED, "random seed"),
    "epochs": (1, 100_000, "training epochs"),
    "batch_size": (1, 1_048_576, "samples per batch"),
    "checkpoint_every": (1, 2**40, "steps between checkpoints"),
    "max_steps": (1, 2**40, "optimizer steps in total"),
    "calibration_batches": (0, 100_000, "calibration batches (0: none, CLI only)"),
    "limit": (1, 2**40, "first N samples of a split"),
    "max_batches": (1, 2**40, "batches evaluated"),
    "num_workers": (0, 1_024, "data-loader worker processes"),
    "num_classes": (1, 1_000_000, "classes K (model outputs)"),
    "in_channels": (1, 65_536, "input channels C"),
    "image_size": (1, 16_384, "image side S"),
}


def describe_range(name: str) -> str:
    """``"1..65536"``: the accepted range of the integer setting ``name`` (powers of two above 2**32 as such)."""
    low, high, _ = INT_RANGES[name]

    def fmt(v: int) -> str:
        if v == MAX_SEED:
            return "2**63-1"
        if v > 2**32 and v & (v - 1) == 0:
            return f"2**{v.bit_length() - 1}"
        return str(v)

    return f"{fmt(low)}..{fmt(high)}"


def _show(value: Any) -> str:
    """``repr`` of ``value``, abbreviated for long integers (Python refuses to print more than 4300 digits)."""
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 100:
        digits = int(value.bit_length() * math.log10(2)) + 1
        return f"{'-' if value < 0 else ''}<{digits}-digit integer>"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def check_int(name: str, value: Any, *, key: str | None = None, none_ok: bool = False) -> Any:
    """Return ``value`` if it is an integer in the range of ``INT_RANGES[key or name]``, else raise ConfigError.

    Args:
        name: How to call the setting in the message (a field name, ``"--seed"``, ``"method 'srp:N'"``...).
        value: The value; ``bool`` is not an integer here.
        key: Row of :data:`INT_RANGES` when ``name`` is not itself a row.
        none_ok: Accept ``None`` (an optional setting left unset).
    """
    if value is None and none_ok:
        return value
    low, high, _ = INT_RANGES[key or name]
    shown = f"{name}={_show(value)}"  # "seed=5", "--seed=5"
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{shown} must be an integer in {describe_range(key or name)}")
    if not low <= value <= high:
        raise ConfigError(f"{shown} is out of range: must be an integer in {describe_range(key or name)}")
    return value


def as_int(name: str, value: Any, *, key: str | None = None) -> int:
    """Like :func:`check_int`, but also accepts other integer types (``numpy.int64``, ...) and returns a Python int.

    Floats are still refused: ``2.5`` must not silently become 2.
    """
    if not isinstance(value, bool):
        try:
            value = operator.index(value)
        except TypeError:
            pass
    return check_int(name, value, key=key)  # type: ignore[no-any-return]


def check_float32(name: str, value: Any, *, positive: bool = False, minimum: float = 1e-6) -> None:
    """Raise ConfigError unless ``value`` is a finite real with ``|value| <= FLOAT32_SAFE`` (and, with ``positive``,
    ``value >= minimum``, so that it neither overflows nor underflows to 0 as a float32 tensor)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ConfigError(f"{name}={_show(value)} must be a finite number")
    if abs(value) > FLOAT32_SAFE:
        raise ConfigError(
            f"{name}={_show(value)} is out of range: |{name}| must be <= {FLOAT32_SAFE:g} (it becomes a float32 "
            "tensor; rescale the inputs instead)"
        )
    if positive and value < minimum:
        raise ConfigError(f"{name}={_show(value)} is out of range: must be >= {minimum:g} (and <= {FLOAT32_SAFE:g})")


def check_timesteps(timesteps: Any, name: str = "timesteps") -> list[int]:
    """Sorted distinct T values, each an integer in the ``timesteps`` range; ConfigError naming the bad one.

    ``timesteps=(2.5,)`` is an error, not T=2; a bare integer is accepted as one T.
    """
    if isinstance(timesteps, int) and not isinstance(timesteps, bool):
        timesteps = (timesteps,)
    if isinstance(timesteps, (str, bytes)) or not hasattr(timesteps, "__iter__"):
        raise ConfigError(f"{name}={_show(timesteps)} must be a sequence of integers, e.g. {name}=(1, 2, 4, 8)")
    values = list(timesteps)
    if not values:
        raise ConfigError(f"{name} must name at least one T, e.g. {name}=(1, 2, 4, 8)")
    return sorted({as_int(name, t, key="timesteps") for t in values})
