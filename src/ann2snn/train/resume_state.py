"""The schema of a training checkpoint's resume state, checked before any of it is used.

A resume state comes from ``last.json`` plus tensors in ``last.safetensors`` (see :mod:`ann2snn.train.loop`). The
JSON is only as trustworthy as the folder it sits in, so every field is checked for type and range here and a
tampered file is a :class:`~ann2snn.errors.CheckpointError` naming the file and the field, never a ``KeyError``,
``TypeError`` or ``AttributeError`` from deep inside the loop or the optimizer.

Example:
    >>> check_resume_state({"epoch": "x"}, "last.json", epochs=3, steps_per_epoch=10, world_size=1)
    Traceback (most recent call last):
    ...
    ann2snn.errors.CheckpointError: last.json: invalid resume state: 'config' is missing; ...
"""

from __future__ import annotations

import os
from typing import Any

import torch

from ann2snn.errors import CheckpointError

__all__ = ["check_resume_state"]

_HINT = "the file was edited or is not from ann2snn's train; delete the output folder's last/previous to restart"


def _fail(source: str | os.PathLike[str], what: str) -> CheckpointError:
    return CheckpointError(f"{source}: invalid resume state: {what}; {_HINT}")


def _count(state: dict[str, Any], key: str, source: str | os.PathLike[str], upper: int | None = None) -> int:
    value = state.get(key)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise _fail(source, f"{key!r} is {_show(value)}, expected a non-negative integer")
    if upper is not None and value > upper:
        raise _fail(source, f"{key!r} is {value}, more than this run's {upper}")
    return value


def _show(value: Any) -> str:
    text = repr(value) if not isinstance(value, dict | list) else type(value).__name__
    return text if len(text) <= 40 else text[:37] + "..."


def _tensor_list(value: Any, key: str, source: str | os.PathLike[str], world_size: int) -> None:
    if not isinstance(value, list) or len(value) < world_size:
        raise _fail(source, f"{key!r} must be a list of {world_size} RNG state tensor(s), got {_show(value)}")
    for item in value:
        if not isinstance(item, torch.Tensor) or item.dtype != torch.uint8 or item.ndim != 1:
            raise _fail(source, f"{key!r} holds {_show(item)}, expected 1-D uint8 RNG state tensors")


def check_resume_state(
    state: Any, source: str | os.PathLike[str], *, epochs: int, steps_per_epoch: int, world_size: int
) -> None:
    """Raise :class:`CheckpointError` naming ``source`` and the field unless ``state`` is a well-formed resume state.

    Args:
        state: The decoded ``training_state`` of a checkpoint.
        source: The file it came from (for the message).
        epochs, steps_per_epoch, world_size: This run's values, which bound the saved counters.
    """
    if not isinstance(state, dict):
        raise _fail(source, f"expected an object, got {_show(state)}")
    for key, kind in (("config", dict), ("running", dict), ("history", list), ("optimizer", dict), ("rng", dict)):
        if key not in state:
            raise _fail(source, f"{key!r} is missing")
        if not isinstance(state[key], kind):
            raise _fail(source, f"{key!r} is {_show(state[key])}, expected a {kind.__name__}")
    _count(state, "epoch", source, epochs)
    _count(state, "step_in_epoch", source, steps_per_epoch)
    _count(state, "global_step", source, epochs * steps_per_epoch)
    for key in ("num_samples", "world_size"):
        _count(state, key, source)
    running = state["running"]
    for key in ("loss_sum", "correct"):
        value = running.get(key)
        if not isinstance(value, torch.Tensor) or value.numel() != 1:
            raise _fail(source, f"'running.{key}' is {_show(value)}, expected a one-element tensor")
    _count(running, "count", source)
    if not all(isinstance(entry, dict) for entry in state["history"]):
        raise _fail(source, "'history' must be a list of objects")
    optimizer = state["optimizer"]
    if not isinstance(optimizer.get("state"), dict) or not isinstance(optimizer.get("param_groups"), list):
        raise _fail(source, "'optimizer' must hold 'state' (an object) and 'param_groups' (a list)")
    if not all(isinstance(group, dict) for group in optimizer["param_groups"]):
        raise _fail(source, "'optimizer.param_groups' must be a list of objects")
    _tensor_list(state["rng"].get("torch"), "rng.torch", source, world_size)
    if "cuda" in state["rng"]:
        _tensor_list(state["rng"]["cuda"], "rng.cuda", source, world_size)


def check_loaded_optimizer(optimizer: torch.optim.Optimizer, source: str | os.PathLike[str]) -> None:
    """After ``load_state_dict``: numeric hyper-parameters and per-parameter buffers shaped like their parameter."""
    for index, group in enumerate(optimizer.param_groups):
        for key in ("lr", "momentum", "dampening", "weight_decay"):
            value = group.get(key, 0.0)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise _fail(source, f"'optimizer.param_groups[{index}].{key}' is {_show(value)}, expected a number")
        for param in group["params"]:
            for name, buffer in optimizer.state.get(param, {}).items():
                if buffer is not None and (not isinstance(buffer, torch.Tensor) or buffer.shape != param.shape):
                    raise _fail(
                        source,
                        f"optimizer buffer {name!r} is {_show(buffer)}, not a tensor of shape {list(param.shape)}",
                    )
