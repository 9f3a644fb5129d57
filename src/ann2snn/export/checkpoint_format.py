"""The on-disk checkpoint format: JSON encoding of metadata and training state, and verified reading back.

Values go into the JSON as plain scalars, lists and objects; tensors of a training state move to the safetensors
file and are referenced as ``{"__tensor__": key}``, non-finite floats are written as ``{"__float__": repr}`` and
dicts with non-string keys as ``{"__items__": [[key, value], ...]}``. Reading checks the metadata schema, then the
size and SHA-256 of the weights file, before anything is decoded. See :mod:`ann2snn.export.checkpoint`.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file

from ann2snn.config import QuantConfig
from ann2snn.errors import CheckpointError, ConfigError
from ann2snn.export.checkpoint_pair import locate_weights
from ann2snn.safeload import load_json_file

__all__ = ["FORMAT", "FORMAT_VERSION", "MODEL_PREFIX", "STATE_PREFIX"]

FORMAT = "ann2snn-checkpoint"
FORMAT_VERSION = 1
MODEL_PREFIX = "model."
STATE_PREFIX = "state."


def _quant_dict(quant: QuantConfig | Mapping[str, Any] | None) -> dict[str, Any] | None:
    if quant is None:
        return None
    if isinstance(quant, QuantConfig):
        return quant.to_dict()
    try:
        return QuantConfig.from_dict(dict(quant)).to_dict()
    except (ConfigError, TypeError) as exc:
        raise CheckpointError(f"cannot save checkpoint: quant is not a valid QuantConfig: {exc}") from exc


def _storable(tensor: torch.Tensor) -> torch.Tensor:
    # A private contiguous CPU copy: safetensors refuses shared storage (tied weights) and views.
    return tensor.detach().to("cpu", copy=True).contiguous()


def _encode(obj: Any, tensors: dict[str, torch.Tensor] | None, where: str) -> Any:
    """JSON form of ``obj``; tensors move to ``tensors`` (when given) as ``{"__tensor__": key}``."""
    if isinstance(obj, torch.Tensor):
        if tensors is None:
            if obj.numel() == 1:
                return _encode(obj.item(), None, where)
            raise CheckpointError(f"cannot save checkpoint: {where} holds a tensor; only scalars are allowed there")
        key = f"{STATE_PREFIX}{len(tensors):06d}"
        tensors[key] = _storable(obj)
        return {"__tensor__": key}
    if isinstance(obj, bool) or obj is None or isinstance(obj, str | int):
        return obj
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else {"__float__": repr(obj)}
    if isinstance(obj, Mapping):
        if all(isinstance(k, str) and not k.startswith("__") for k in obj):
            return {k: _encode(v, tensors, f"{where}[{k!r}]") for k, v in obj.items()}
        items = []
        for k, v in obj.items():
            if not (k is None or isinstance(k, str | int | float | bool)):
                raise CheckpointError(f"cannot save checkpoint: {where} has a key of type {type(k).__name__}")
            items.append([k, _encode(v, tensors, f"{where}[{k!r}]")])
        return {"__items__": items}
    if isinstance(obj, list | tuple):
        return [_encode(v, tensors, f"{where}[{i}]") for i, v in enumerate(obj)]
    if hasattr(obj, "item") and callable(obj.item):  # numpy scalars
        return _encode(obj.item(), tensors, where)
    raise CheckpointError(
        f"cannot save checkpoint: {where} holds a {type(obj).__name__}; use JSON scalars, lists, dicts or tensors"
    )


def _dumps(meta: dict[str, Any], json_path: Path) -> str:
    try:
        return json.dumps(meta, indent=2, sort_keys=True, allow_nan=False) + "\n"
    except (TypeError, ValueError) as exc:  # pragma: no cover - _encode already restricts the types
        raise CheckpointError(f"cannot write {json_path}: {exc}") from exc


def _read_meta(weights_path: Path, json_path: Path) -> dict[str, Any]:
    if not json_path.is_file():
        if weights_path.is_file():
            raise CheckpointError(
                f"{json_path}: missing, so {weights_path.name} is an incomplete checkpoint (interrupted save?)"
            )
        raise CheckpointError(f"no checkpoint at {json_path.with_suffix('')} (expected {json_path} and {weights_path})")
    meta = load_json_file(json_path, CheckpointError)
    _validate_meta(meta, json_path)
    return meta


def _validate_meta(meta: Any, json_path: Path) -> None:
    def fail(what: str) -> CheckpointError:
        return CheckpointError(f"{json_path}: invalid checkpoint metadata: {what}")

    if not isinstance(meta, dict):
        raise fail(f"expected a JSON object, got {type(meta).__name__}")
    if meta.get("format") != FORMAT:
        raise fail(f"format is {meta.get('format')!r}, expected {FORMAT!r} (not an ann2snn checkpoint?)")
    version = meta.get("format_version")
    if isinstance(version, bool) or not isinstance(version, int):
        raise fail(f"format_version is {version!r}, expected an integer")
    if version > FORMAT_VERSION:
        raise fail(f"format_version {version} is newer than this ann2snn reads ({FORMAT_VERSION}); upgrade ann2snn")
    schema: dict[str, tuple[type, ...]] = {
        "weights": (dict,),
        "model": (dict,),
        "quant": (dict, type(None)),
        "dataset": (str, type(None)),
        "metrics": (dict,),
        "extra": (dict,),
        "training_state": (dict, type(None)),
    }
    for key, types in schema.items():
        if key not in meta:
            raise fail(f"missing key {key!r}")
        if not isinstance(meta[key], types):
            raise fail(f"{key!r} has type {type(meta[key]).__name__}")
    weights = meta["weights"]
    sha = weights.get("sha256")
    if not isinstance(sha, str) or re.fullmatch("[0-9a-f]{64}", sha) is None:
        raise fail("weights.sha256 must be a 64-character hex string")
    size = weights.get("size")
    if isinstance(size, bool) or not isinstance(size, int) or size < 0:
        raise fail("weights.size must be a non-negative integer")
    model = meta["model"]
    if not isinstance(model.get("name"), str | type(None)):
        raise fail("model.name must be a string or null")
    if not isinstance(model.get("kwargs"), dict | type(None)):
        raise fail("model.kwargs must be an object or null")
    if meta["quant"] is not None:
        try:
            QuantConfig.from_dict(meta["quant"])
        except (ConfigError, TypeError, ValueError, KeyError, AttributeError, OverflowError) as exc:
            raise fail(f"quant: {exc}") from exc


def _read_weights(weights_path: Path, meta: dict[str, Any], map_location: str | torch.device) -> dict[str, Any]:
    json_name = weights_path.stem + ".json"
    weights_path = locate_weights(weights_path, meta["weights"]["sha256"])
    if not weights_path.is_file():
        raise CheckpointError(f"{weights_path}: missing (the checkpoint's weights file)")
    expected_size = meta["weights"]["size"]
    size = weights_path.stat().st_size
    if size != expected_size:
        raise CheckpointError(
            f"{weights_path}: {size} bytes but the metadata says {expected_size} (truncated, or from a different save)"
        )
    digest = hashlib.sha256()
    try:
        with open(weights_path, "rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
    except OSError as exc:
        raise CheckpointError(f"{weights_path}: cannot read: {exc.strerror or exc}") from exc
    if digest.hexdigest() != meta["weights"]["sha256"]:
        raise CheckpointError(
            f"{weights_path}: content does not match the SHA-256 in {json_name} "
            "(corrupt file, or from a different save)"
        )
    try:
        return dict(load_file(weights_path, device=str(map_location)))
    except Exception as exc:  # safetensors raises its own error types
        raise CheckpointError(f"{weights_path}: not a readable safetensors file: {exc}") from exc


def _decode(obj: Any, tensors: Mapping[str, torch.Tensor], source: Path) -> Any:
    """Inverse of :func:`_encode`; a malformed special object is a :class:`CheckpointError` naming ``source``."""
    if isinstance(obj, list):
        return [_decode(v, tensors, source) for v in obj]
    if not isinstance(obj, dict):
        return obj
    if set(obj) == {"__tensor__"}:
        key = obj["__tensor__"]
        if not isinstance(key, str) or key not in tensors:
            raise CheckpointError(f"{source}: tensor {key!r} named by the metadata is missing")
        return tensors[key]
    if set(obj) == {"__float__"}:
        text = obj["__float__"]
        if text not in ("inf", "-inf", "nan"):
            raise CheckpointError(f"{source}: '__float__' entry {text!r} in the metadata is not inf, -inf or nan")
        return float(text)
    if set(obj) == {"__items__"}:
        items = obj["__items__"]
        if not isinstance(items, list) or not all(
            isinstance(i, list) and len(i) == 2 and (i[0] is None or isinstance(i[0], str | int | float)) for i in items
        ):
            raise CheckpointError(
                f"{source}: malformed '__items__' entry in the metadata (pairs of [scalar key, value])"
            )
        return {k: _decode(v, tensors, source) for k, v in items}
    return {k: _decode(v, tensors, source) for k, v in obj.items()}
