"""Loading files that may come from anyone, without running code from them.

ann2snn's own checkpoints are safetensors + JSON (see :mod:`ann2snn.export.checkpoint`) and never pickled. Two
pickle-based formats still reach it from outside:

* CIFAR "python version" batches: read with :func:`safe_pickle_load`, an unpickler that builds only plain
  containers, strings, numbers and numpy arrays and refuses every other global (``os.system``, ``eval``, ...).
* PyTorch ``.pt``/``.pth`` state dicts (e.g. weights from another project): read with
  :func:`load_torch_weights`, which calls ``torch.load(weights_only=True)`` (tensors and containers only).

Example:
    >>> import io, pickle, numpy as np
    >>> safe_pickle_load(io.BytesIO(pickle.dumps({b"data": np.arange(3, dtype=np.uint8)})))[b"data"]
    array([0, 1, 2], dtype=uint8)
"""

from __future__ import annotations

import os
import pickle
from pathlib import Path
from typing import IO, Any

import torch

from ann2snn.errors import CheckpointError

__all__ = ["UnsafePickleError", "load_torch_weights", "safe_pickle_load"]

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


class _RestrictedUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if ("builtins" if module == "__builtin__" else module, name) in _ALLOWED_GLOBALS:
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
