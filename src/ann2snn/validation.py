"""Shared checks at the public boundary: finite weights, input shapes, labels, and config JSON.

Each check raises an :mod:`ann2snn.errors` exception whose message names the offending thing (the parameter, the
tensor and its shape, the file or field) and says what to do, so callers need no ``try`` around torch internals.

Example:
    >>> import torch
    >>> from torch import nn
    >>> check_finite_model(nn.Linear(2, 2))
    >>> check_input_shape(torch.zeros(4, 1, 8, 8), (1, 8, 8))
    >>> check_input_shape(torch.zeros(4, 3, 8, 8), (1, None, None))
    Traceback (most recent call last):
    ...
    ann2snn.errors.InputError: x has shape (4, 3, 8, 8) but the model expects [B, 1, *, *] (dim 1 is 3, expected 1)
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import torch
from torch import Tensor, nn

from ann2snn.errors import ConfigError, InputError, ResourceError

__all__ = [
    "call_checked",
    "check_finite_model",
    "check_input_shape",
    "check_labels",
    "load_config",
    "model_input_shape",
]

T = TypeVar("T")


def check_finite_model(model: nn.Module, what: str | None = None) -> None:
    """Raise :class:`InputError` if any floating parameter or buffer of ``model`` holds NaN or Inf.

    Args:
        model: The module to check (not modified).
        what: How to call the model in the message (default: its class name).

    Raises:
        InputError: Naming the first bad tensor, e.g. ``parameter 'features.0.weight'``, and how many values are bad.
    """
    what = what or type(model).__name__
    tensors: list[tuple[str, str, Tensor]] = [("parameter", n, t) for n, t in model.named_parameters()]
    tensors += [("buffer", n, t) for n, t in model.named_buffers()]
    for kind, name, tensor in tensors:
        if tensor.is_floating_point() or tensor.is_complex():
            finite = torch.isfinite(tensor.detach())
            if not bool(finite.all()):
                bad = int((~finite).sum())
                raise InputError(
                    f"{what} has {bad} NaN/Inf value(s) of {tensor.numel()} in {kind} '{name}'; the weights are "
                    "broken (diverged training or a corrupt file): retrain with a lower learning rate or reload them"
                )


def model_input_shape(model: nn.Module) -> tuple[int, ...] | None:
    """Per-sample input shape ``(C, S, S)`` of a registered model (from ``model_kwargs``), else ``None``."""
    kwargs = getattr(model, "model_kwargs", None)
    if not isinstance(kwargs, Mapping):
        return None
    channels, size = kwargs.get("in_channels"), kwargs.get("image_size")
    if isinstance(channels, int) and isinstance(size, int):
        return (channels, size, size)
    return None


def check_input_shape(x: Tensor, expected: Sequence[int | None], name: str = "x") -> None:
    """Raise :class:`InputError` unless ``x`` is a batch ``[B, *expected]`` (``None`` matches any size).

    Shape:
        x: ``[B, d1, ..., dk]`` with ``k == len(expected)``.
    """
    pattern = "[B, " + ", ".join("*" if d is None else str(d) for d in expected) + "]"
    shape = tuple(x.shape)
    if len(shape) != len(expected) + 1:
        raise InputError(
            f"{name} has shape {shape} ({len(shape)} dims) but the model expects {pattern} "
            f"({len(expected) + 1} dims); add or remove a batch/channel dimension"
        )
    for dim, (got, want) in enumerate(zip(shape[1:], expected, strict=True), start=1):
        if want is not None and got != want:
            raise InputError(
                f"{name} has shape {shape} but the model expects {pattern} (dim {dim} is {got}, expected {want})"
            )


def check_labels(y: Any, batch: int, num_classes: int | None = None, name: str = "labels") -> Tensor:
    """Return ``y`` if it is an integer class-index tensor ``[batch]`` in ``0..num_classes-1``, else raise.

    Raises:
        InputError: Wrong type, dtype, shape, or a label outside the classes (naming the bad value).
    """
    if not isinstance(y, Tensor):
        raise InputError(f"{name} must be a torch.Tensor of class indices, got {type(y).__name__}")
    if y.is_floating_point() or y.is_complex() or y.dtype == torch.bool:
        raise InputError(f"{name} must hold integer class indices, got dtype {y.dtype} (convert with .long())")
    if tuple(y.shape) != (batch,):
        raise InputError(f"{name} has shape {tuple(y.shape)}, expected ({batch},): one class index per sample")
    if y.numel():
        low, high = int(y.min()), int(y.max())
        if low < 0 or (num_classes is not None and high >= num_classes):
            bad = low if low < 0 else high
            limit = f"0..{num_classes - 1}" if num_classes is not None else "non-negative values"
            raise InputError(f"{name} contain class index {bad}, outside {limit} (the model has {num_classes} outputs)")
    return y


_ALLOCATION_FAILURES = ("can't allocate memory", "not enough memory", "out of memory", "std::bad_alloc")


def _out_of_memory(x: Tensor, what: str, name: str, exc: BaseException) -> ResourceError:
    first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    return ResourceError(
        f"{what} ran out of memory on {name} of shape {tuple(x.shape)} ({first}); use a smaller batch "
        "(--batch-size), fewer time steps (--timesteps) or, for parallel SNNs, mode='rate' (--mode rate)"
    )


def call_checked(fn: Callable[[Tensor], T], x: Tensor, what: str, name: str = "x") -> T:
    """``fn(x)``, turning a torch shape/type failure inside it into an :class:`InputError` naming ``x``'s shape.

    CUDA out-of-memory errors pass through unchanged; a failed CPU allocation (``MemoryError`` or torch's "can't
    allocate memory") becomes a :class:`ResourceError` saying so, not an input-shape error.
    """
    try:
        return fn(x)
    except torch.OutOfMemoryError:
        raise
    except MemoryError as exc:
        raise _out_of_memory(x, what, name, exc) from exc
    except (RuntimeError, IndexError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if any(s in first.lower() for s in _ALLOCATION_FAILURES):
            raise _out_of_memory(x, what, name, exc) from exc
        raise InputError(
            f"{name} of shape {tuple(x.shape)} and dtype {x.dtype} does not fit {what}: {first}; check the image "
            "size and channels the model was built for (run with --debug for the traceback)"
        ) from exc


_MAX_CONFIG_BYTES = 2**20


def load_config(source: str | os.PathLike[str] | Mapping[str, Any], cls: type[T]) -> T:
    """Read a config (``QuantConfig``, ``ConversionConfig``, ``TrainConfig``) from a JSON file or a dict.

    Args:
        source: A path to a JSON file holding one object, or the already-parsed mapping.
        cls: The config class; its ``from_dict`` validates every field.

    Raises:
        ConfigError: Unreadable file, invalid JSON, or invalid fields; the message names the file and field.
    """
    where = "config"
    if isinstance(source, Mapping):
        data: Any = dict(source)
    else:
        path = Path(source)
        where = str(path)
        from ann2snn.safeload import MAX_JSON_DEPTH, json_depth_exceeds

        try:
            if path.stat().st_size > _MAX_CONFIG_BYTES:
                raise ConfigError(f"config file {path} has more than {_MAX_CONFIG_BYTES:,} bytes; not a config file?")
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise ConfigError(f"config file {path} does not exist; check the path") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"cannot read config file {path}: {exc}") from exc
        too_deep = f"config file {path} is nested more than {MAX_JSON_DEPTH} levels deep; not a config file?"
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"config file {path} is not valid JSON: {exc}") from exc
        except RecursionError as exc:
            raise ConfigError(too_deep) from exc
        if json_depth_exceeds(data, MAX_JSON_DEPTH):
            raise ConfigError(too_deep)
    from_dict = getattr(cls, "from_dict", None)
    if from_dict is None:
        raise ConfigError(f"{getattr(cls, '__name__', cls)!r} is not an ann2snn config class")
    try:
        return from_dict(data)  # type: ignore[no-any-return]
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc}") from exc
    except TypeError as exc:
        raise ConfigError(f"{where}: invalid {cls.__name__}: {exc}") from exc
