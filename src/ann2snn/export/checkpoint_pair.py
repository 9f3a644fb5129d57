"""Switching a checkpoint's two files atomically: the new pair is complete on disk before one rename makes it current.

A checkpoint ``X`` is ``X.json`` (metadata, including the SHA-256 of the weights) plus its weights file. The
``.json`` is the pointer: it names the weights by their hash, and the weights are looked up at
``X.<first 16 hex digits of the hash>.safetensors`` first, then at ``X.safetensors``. Saving over an existing
checkpoint therefore goes:

1. write the new weights to ``X.<hash16>.safetensors`` (atomically; the old pair is untouched),
2. replace ``X.json`` (one atomic rename: from here on the new pair is current),
3. rename ``X.<hash16>.safetensors`` onto ``X.safetensors`` (the old weights go; the JSON finds the new ones
   under either name),
4. delete what killed writers left: staged weights files of other hashes and temporary files of dead processes.

A kill or a full disk at any point leaves either the old or the new checkpoint loadable, and the next save of the
same checkpoint removes the debris. Checkpoints written before this scheme (``X.json`` + ``X.safetensors``) are the
steady state of it and load unchanged. One process at a time may write a given checkpoint.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import shutil
from collections.abc import Callable
from pathlib import Path

from ann2snn.errors import CheckpointError
from ann2snn.io import atomic_path, atomic_write_text, fsync_dir, output_target, stale_temps

__all__ = ["install_pair", "locate_weights", "staged_weights"]

_HASH_CHARS = 16


def staged_weights(weights_path: Path, sha256: str) -> Path:
    """Where a save puts new weights of hash ``sha256`` before the JSON switches to them."""
    return weights_path.with_name(f"{weights_path.stem}.{sha256[:_HASH_CHARS]}.safetensors")


def locate_weights(weights_path: Path, sha256: str) -> Path:
    """The file holding the weights the JSON vouches for: the staged name if a save stopped after step 2."""
    staged = staged_weights(weights_path, sha256)
    return staged if staged.is_file() else weights_path


def install_pair(
    weights_path: Path, json_path: Path, write_weights: Callable[[Path], None], sha256: str, size: int, text: str
) -> None:
    """Make ``(weights, text)`` the checkpoint at ``weights_path``/``json_path`` (steps 1-4 of the module doc).

    ``write_weights(tmp)`` writes (or hard-links) the complete weights file to ``tmp``.

    Raises:
        CheckpointError: Writing failed (disk full, permissions, ...); the previous checkpoint is unchanged.
    """
    weights_path = output_target(weights_path)
    json_path = output_target(json_path)
    staged = staged_weights(weights_path, sha256)
    switched = False
    try:
        with atomic_path(staged) as tmp:
            write_weights(tmp)
        atomic_write_text(json_path, text)
        switched = True
        os.replace(staged, weights_path)
        fsync_dir(weights_path.parent)
    except OSError as exc:
        if not switched:
            with contextlib.suppress(OSError):
                staged.unlink()
        raise CheckpointError(_failure(json_path.with_suffix(""), size, exc, switched)) from exc
    _remove_leftovers(weights_path, json_path)


def _failure(stem: Path, size: int, exc: OSError, switched: bool) -> str:
    state = (
        "the new checkpoint is complete but its weights keep their staged name until the next save"
        if switched
        else "the previous checkpoint there (if any) is unchanged"
    )
    if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
        try:
            free = f"{shutil.disk_usage(stem.parent).free:,} bytes free"
        except OSError:
            free = "free space unknown"
        return (
            f"cannot save checkpoint {stem}: no space left ({size:,} bytes of weights needed, {free}); {state}. "
            "Free some space or save elsewhere"
        )
    return f"cannot save checkpoint {stem}: {exc.strerror or exc}; {state}"


def _remove_leftovers(weights_path: Path, json_path: Path) -> None:
    """Delete staged weights of other saves and temporary files of killed writers of this checkpoint."""
    stem = re.escape(weights_path.stem)
    staged_re = re.compile(rf"{stem}\.[0-9a-f]{{{_HASH_CHARS}}}\.safetensors")
    debris = [
        p
        for p in weights_path.parent.iterdir()
        if staged_re.fullmatch(p.name) and not p.with_suffix(".json").exists()  # else a checkpoint of its own
    ]
    debris += stale_temps(weights_path.parent, rf"{stem}(\.[0-9a-f]{{{_HASH_CHARS}}})?\.(safetensors|json)")
    for path in debris:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
