"""Loading files that may come from anyone, without running code from them.

ann2snn's own checkpoints are safetensors + JSON (see :mod:`ann2snn.export.checkpoint`) and never pickled. Two
pickle-based formats still reach it from outside:

* CIFAR "python version" batches: read with :func:`safe_pickle_load`, an unpickler that builds only plain
  containers, strings, numbers and numpy arrays and refuses every other global (``os.system``, ``eval``, ...).
* PyTorch ``.pt``/``.pth`` state dicts (e.g. weights from another project): read with
  :func:`load_torch_weights`, which calls ``torch.load(weights_only=True)`` (tensors and containers only).

JSON metadata (checkpoint ``.json`` files) is read with :func:`load_json_file`: the file size is checked before
reading and the nesting depth after parsing, so a tampered file is an error naming it, not a ``RecursionError``
or an exhausted memory.

Example:
    >>> import io, pickle, numpy as np
    >>> safe_pickle_load(io.BytesIO(pickle.dumps({b"data": np.arange(3, dtype=np.uint8)})))[b"data"]
    array([0, 1, 2], dtype=uint8)
"""

from __future__ import annotations

import json
import os
import pickle
from pathlib import Path
from typing import IO, Any

import torch

from ann2snn.errors import CheckpointError

__all__ = [
    "MAX_JSON_BYTES",
    "MAX_JSON_DEPTH",
    "UnsafePickleError",
    "load_json_file",
    "load_torch_weights",
    "safe_pickle_load",
]

MAX_JSON_BYTES = 256 * 2**20
"""Largest metadata JSON file read (a training history of millions of steps stays far below it)."""
MAX_JSON_DEPTH = 64
"""Deepest nesting of lists/objects accepted in metadata JSON (ann2snn writes fewer than 10 levels)."""
MAX_PICKLE_BYTEARRAY = 2**20
"""Largest ``bytearray(n)`` a pickle may ask for by size (real data arrives as bytes, bounded by the file)."""

# The globals a pickled dict of numpy arrays needs; numpy 2 moved numpy.core to numpy._core.
_ALLOWED_GLOBALS = frozenset(
    {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy.core.multiarray", "scalar"),
        ("numpy._core.multiarray", "scalar"),
        ("numpy.core.numeric", "_frombuffer"),
        ("numpy._core.numeric", "_frombuffer"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("builtins", "bytearray"),
        ("builtins", "set"),
        ("builtins", "frozenset"),
        ("builtins", "complex"),
        ("_codecs", "encode"),
    }
)


class UnsafePickleError(pickle.UnpicklingError):
    """The pickle asks for a global outside the allow-list (it could run code)."""


def _bounded_bytearray(*args: Any) -> bytearray:
    """``bytearray`` for pickles, refusing ``bytearray(n)`` with a huge ``n`` (a tiny pickle could allocate GiBs)."""
    if args and isinstance(args[0], int) and args[0] > MAX_PICKLE_BYTEARRAY:
        raise UnsafePickleError(f"refusing bytearray({args[0]}) from a pickle: allocates more than the file holds")
    return bytearray(*args)


class _RestrictedUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        module = "builtins" if module == "__builtin__" else module
        if (module, name) == ("builtins", "bytearray"):
            return _bounded_bytearray
        if (module, name) in _ALLOWED_GLOBALS:
            return super().find_class(module, name)
        raise UnsafePickleError(
            f"refusing to load global {module}.{name} from a pickle: only plain data and numpy arrays are allowed"
        )


def safe_pickle_load(file: IO[bytes], encoding: str = "bytes") -> Any:
    """Unpickle ``file`` allowing only containers, strings, numbers and numpy arrays.

    Args:
        file: A binary file object positioned at the pickle.
        encoding: How to decode Python 2 ``str`` objects (CIFAR needs ``"bytes"``).

    Raises:
        UnsafePickleError: The pickle references any other global (nothing of it was executed).
        pickle.UnpicklingError, EOFError, ...: Corrupt or truncated data, as :func:`pickle.load`.
    """
    return _RestrictedUnpickler(file, encoding=encoding).load()


def load_torch_weights(path: str | os.PathLike[str], map_location: str | torch.device = "cpu") -> Any:
    """Load a PyTorch ``.pt``/``.pth`` file with ``weights_only=True`` (tensors, dicts, lists, numbers only).

    Prefer safetensors files; use this for state dicts produced elsewhere. A ``{"state_dict": ...}`` wrapper is
    returned as it is.

    Raises:
        CheckpointError: Missing file, corrupt data, or a file that needs arbitrary code to load (naming ``path``).
    """
    p = Path(path)
    if not p.is_file():
        raise CheckpointError(f"{p}: no such file (expected a PyTorch state dict .pt/.pth)")
    try:
        return torch.load(p, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        raise CheckpointError(
            f"{p}: refused to load: it holds more than tensors and plain containers (loading it could run code). "
            f"Re-save only the state_dict, or convert it to safetensors. Detail: {str(exc).splitlines()[0]}"
        ) from exc
    except Exception as exc:  # torch raises RuntimeError/EOFError/... for corrupt or truncated files
        raise CheckpointError(f"{p}: not a readable PyTorch file (truncated or corrupt?): {exc}") from exc


def json_depth_exceeds(obj: Any, max_depth: int) -> bool:
    """Whether ``obj`` nests lists/dicts deeper than ``max_depth`` (iterative: no recursion limit involved)."""
    stack: list[tuple[Any, int]] = [(obj, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            if depth >= max_depth:
                return True
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children)
    return False


def load_json_file(
    path: str | os.PathLike[str],
    error: type[Exception] = CheckpointError,
    *,
    max_bytes: int = MAX_JSON_BYTES,
    max_depth: int = MAX_JSON_DEPTH,
) -> Any:
    """Parse the JSON file ``path`` after checking its size, then check its nesting depth.

    Raises:
        error: (default :class:`CheckpointError`) missing/unreadable file, more than ``max_bytes``, invalid JSON or
            UTF-8, or nesting deeper than ``max_depth``; the message names ``path``.
    """
    p = Path(path)
    try:
        size = p.stat().st_size
        if size > max_bytes:
            raise error(f"{p}: {size:,} bytes, more than the {max_bytes:,} a metadata file may have (not ann2snn's?)")
        text = p.read_bytes().decode("utf-8")
    except OSError as exc:
        raise error(f"{p}: cannot read: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise error(f"{p}: not valid JSON (not UTF-8 text; truncated or corrupt?): {exc}") from exc
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise error(f"{p}: not valid JSON (truncated or corrupt?): {exc}") from exc
    except RecursionError as exc:
        raise error(
            f"{p}: JSON nested too deeply (more than {max_depth} levels allowed); the file was tampered with"
        ) from exc
    if json_depth_exceeds(value, max_depth):
        raise error(f"{p}: JSON nested more than {max_depth} levels deep; the file was tampered with")
    return value
