"""Checkpoints: model weights in safetensors plus validated JSON metadata; no pickle anywhere.

A checkpoint named ``runs/x/last`` is the pair of files ``runs/x/last.safetensors`` (model weights and, for a
training checkpoint, optimizer and RNG tensors) and ``runs/x/last.json`` (format version, model name and the
``model_kwargs`` that rebuild it, the :class:`~ann2snn.config.QuantConfig` if the model was prepared, dataset,
metrics, training scalars and the SHA-256 of the weights file). A path naming an existing directory means the pair
``<dir>/checkpoint.*``; a path ending in ``.json`` or ``.safetensors`` names its pair.

Saving over an existing checkpoint switches the pair atomically: the new weights are written completely under a
staged name, then one rename of the ``.json`` makes the new pair current (see
:mod:`ann2snn.export.checkpoint_pair`); a kill or a full disk at any moment leaves the old or the new checkpoint
loadable. A ``.json`` file present means a complete checkpoint whose weights file it vouches for by hash.
Anything wrong on load (missing file, truncated or corrupt data, missing keys or wrong types in the metadata, an
architecture that does not match) raises :class:`~ann2snn.errors.CheckpointError` naming the file and the problem.

Example:
    >>> import tempfile, torch
    >>> from torch import nn
    >>> net = nn.Linear(3, 2)
    >>> stem = save_checkpoint(tempfile.mkdtemp() + "/net", net, metrics={"acc": 0.5})
    >>> ckpt = load_checkpoint(stem, model=nn.Linear(3, 2))
    >>> torch.equal(ckpt.model.weight, net.weight), ckpt.meta["metrics"]["acc"]
    (True, 0.5)
"""

from __future__ import annotations

import copy
import dataclasses
import datetime
import hashlib
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save as save_tensors_to_bytes
from torch import nn

from ann2snn.config import QuantConfig
from ann2snn.errors import Ann2SnnError, CheckpointError, ConfigError
from ann2snn.export.checkpoint_format import (
    FORMAT,
    FORMAT_VERSION,
    MODEL_PREFIX,
    _decode,
    _dumps,
    _encode,
    _quant_dict,
    _read_meta,
    _read_weights,
    _storable,
)
from ann2snn.export.checkpoint_pair import install_pair

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "Checkpoint",
    "checkpoint_exists",
    "checkpoint_files",
    "load_checkpoint",
    "save_checkpoint",
]

DIR_STEM = "checkpoint"

PathLike = str | os.PathLike[str]


@dataclasses.dataclass
class Checkpoint:
    """A loaded checkpoint.

    Attributes:
        model: The rebuilt model (prepared when the checkpoint holds a quantized model) with the saved weights, in
            eval mode, on ``map_location``.
        meta: The validated JSON metadata (``model``, ``quant``, ``dataset``, ``metrics``, ``extra``, ...).
        training_state: Optimizer state, RNG state and loop counters of a training checkpoint, else ``None``.
        path: The checkpoint stem (``runs/x/last`` for ``runs/x/last.{json,safetensors}``).
    """

    model: nn.Module
    meta: dict[str, Any]
    training_state: dict[str, Any] | None
    path: Path

    @property
    def quant(self) -> QuantConfig | None:
        """The :class:`QuantConfig` the model was prepared with, or ``None`` for a plain ANN."""
        return None if self.meta["quant"] is None else QuantConfig.from_dict(self.meta["quant"])

    @property
    def metrics(self) -> dict[str, Any]:
        """Metrics stored with the checkpoint (e.g. ``eval_acc``)."""
        return dict(self.meta["metrics"])


def checkpoint_files(path: PathLike) -> tuple[Path, Path]:
    """The ``(weights, metadata)`` file pair of the checkpoint ``path`` (see the module docstring)."""
    stem = _stem(path)
    return stem.with_name(stem.name + ".safetensors"), stem.with_name(stem.name + ".json")


def checkpoint_exists(path: PathLike) -> bool:
    """Whether a complete checkpoint (its ``.json`` file) exists at ``path``."""
    return checkpoint_files(path)[1].is_file()


def _stem(path: PathLike) -> Path:
    p = Path(path)
    if p.suffix in (".json", ".safetensors"):
        return p.with_suffix("")
    if p.is_dir():
        return p / DIR_STEM
    return p


# ----------------------------------------------------------------------------------------------------- saving
def save_checkpoint(
    path: PathLike,
    model: nn.Module,
    *,
    model_name: str | None = None,
    model_kwargs: Mapping[str, Any] | None = None,
    quant: QuantConfig | Mapping[str, Any] | None = None,
    dataset: str | None = None,
    metrics: Mapping[str, Any] | None = None,
    extra: Mapping[str, Any] | None = None,
    training_state: Mapping[str, Any] | None = None,
) -> Path:
    """Save ``model`` (and optionally a training state) as a checkpoint; returns the checkpoint stem.

    Args:
        path: Checkpoint stem, e.g. ``runs/x/final`` (writes ``final.safetensors`` and ``final.json``).
        model: The model whose ``state_dict`` is saved (a DDP wrapper is unwrapped). Not modified.
        model_name: Name for :func:`ann2snn.models.create_model`; defaults to ``model_kwargs["name"]`` or the
            model's ``model_name`` attribute. Without it the checkpoint loads only with ``model=``.
        model_kwargs: Keyword arguments that rebuild the architecture; defaults to ``model.model_kwargs``.
        quant: The :class:`QuantConfig` the model was prepared with (``None`` for a plain ANN).
        dataset: Dataset name the model was trained on.
        metrics: JSON-serializable metrics (accuracies, losses).
        extra: Any other JSON-serializable information (history, command line, ...).
        training_state: Nested dict of JSON scalars, lists and tensors (optimizer ``state_dict()``, RNG state,
            counters); tensors go to the safetensors file.

    Raises:
        CheckpointError: A value cannot be stored (not JSON-serializable, unsupported type).
    """
    weights_path, json_path = checkpoint_files(path)
    module = _unwrap(model)
    name, kwargs = _resolve_model_identity(module, model_name, model_kwargs)
    tensors: dict[str, torch.Tensor] = {
        MODEL_PREFIX + key: _storable(value) for key, value in module.state_dict().items()
    }
    encoded_state = None
    if training_state is not None:
        encoded_state = _encode(dict(training_state), tensors, "training_state")
    data = save_tensors_to_bytes(tensors, metadata={"format": FORMAT, "format_version": str(FORMAT_VERSION)})
    from ann2snn import __version__

    meta: dict[str, Any] = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "ann2snn_version": __version__,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "weights": {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)},
        "model": {"name": name, "kwargs": kwargs, "class": f"{type(module).__module__}.{type(module).__qualname__}"},
        "quant": _quant_dict(quant),
        "dataset": dataset,
        "metrics": _encode(dict(metrics or {}), None, "metrics"),
        "extra": _encode(dict(extra or {}), None, "extra"),
        "training_state": encoded_state,
    }
    text = _dumps(meta, json_path)

    def write_weights(tmp: Path) -> None:
        with open(tmp, "wb") as handle:
            handle.write(data)

    # New weights under a staged name, then one rename of the JSON switches (see checkpoint_pair).
    install_pair(weights_path, json_path, write_weights, meta["weights"]["sha256"], len(data), text)
    return _stem(path)


def _unwrap(model: nn.Module) -> nn.Module:
    if not isinstance(model, nn.Module):
        raise CheckpointError(f"save_checkpoint expects an nn.Module, got {type(model).__name__}")
    inner = getattr(model, "module", None)
    if isinstance(model, nn.parallel.DistributedDataParallel | nn.DataParallel) and isinstance(inner, nn.Module):
        return inner
    return model


def _resolve_model_identity(
    model: nn.Module, model_name: str | None, model_kwargs: Mapping[str, Any] | None
) -> tuple[str | None, dict[str, Any] | None]:
    if model_kwargs is None:
        model_kwargs = getattr(model, "model_kwargs", None)
    kwargs = None if model_kwargs is None else dict(model_kwargs)
    name = model_name
    if kwargs is not None and "name" in kwargs:
        kw_name = kwargs.pop("name")
        name = name if name is not None else kw_name
    if name is None:
        attr = getattr(model, "model_name", None)
        name = attr if isinstance(attr, str) else None
    if name is not None and not isinstance(name, str):
        raise CheckpointError(f"model_name must be a string, got {type(name).__name__}")
    if kwargs is not None:
        kwargs = _encode(kwargs, None, "model_kwargs")
    return name, kwargs


# ---------------------------------------------------------------------------------------------------- loading
def _check_map_location(map_location: Any) -> torch.device:
    """The device to load onto, or a ConfigError naming ``map_location`` (not the file) if it cannot be used."""
    from ann2snn.train.distributed import resolve_device  # lazy: ann2snn.train imports this module

    if not isinstance(map_location, (str, torch.device)):
        raise ConfigError(
            f"map_location={map_location!r} must be a device name such as 'cpu', 'cuda' or 'cuda:1' (or 'auto')"
        )
    try:
        return resolve_device(map_location)
    except ConfigError as exc:
        raise ConfigError(
            f"load_checkpoint(map_location={str(map_location)!r}): {exc}; the checkpoint itself was not read"
        ) from None


def load_checkpoint(
    path: PathLike,
    map_location: str | torch.device = "cpu",
    *,
    model: nn.Module | None = None,
) -> Checkpoint:
    """Load a checkpoint written by :func:`save_checkpoint`, verifying it completely first.

    Args:
        path: The checkpoint stem (or either of its two files, or a directory holding ``checkpoint.*``).
        map_location: Device for the weights and the returned model (``"auto"``, ``"cpu"``, ``"cuda"``, ``"cuda:N"``;
            an unavailable device is a ConfigError naming ``map_location``).
        model: Optional module of exactly the saved architecture (already prepared if the checkpoint is
            quantized); a copy of it receives the weights. Without it the model is rebuilt with
            :func:`ann2snn.models.create_model` (and :func:`ann2snn.prepare` when ``quant`` is set).

    Returns:
        A :class:`Checkpoint`; the given ``model`` is never modified.

    Raises:
        CheckpointError: Missing, truncated or corrupt files, invalid metadata, or weights that do not fit the
            architecture (the message names the file and the problem).
    """
    map_location = _check_map_location(map_location)
    weights_path, json_path = checkpoint_files(path)
    meta = _read_meta(weights_path, json_path)
    raw = _read_weights(weights_path, meta, map_location)
    state = {k[len(MODEL_PREFIX) :]: v for k, v in raw.items() if k.startswith(MODEL_PREFIX)}
    training_state = None
    if meta["training_state"] is not None:
        training_state = _decode(meta["training_state"], raw, weights_path)
    if model is None:
        built = _rebuild(meta, json_path)
    else:
        if not isinstance(model, nn.Module):
            raise CheckpointError(f"load_checkpoint(model=...) expects an nn.Module, got {type(model).__name__}")
        built = copy.deepcopy(_unwrap(model))
    load_model_state(built, state, weights_path)
    built.to(map_location)
    built.eval()
    public_meta = {k: v for k, v in meta.items() if k != "training_state"}
    public_meta["metrics"] = _decode(meta["metrics"], {}, json_path)
    public_meta["extra"] = _decode(meta["extra"], {}, json_path)
    return Checkpoint(model=built, meta=public_meta, training_state=training_state, path=_stem(path))


def load_model_state(model: nn.Module, state: Mapping[str, torch.Tensor], source: PathLike) -> None:
    """Copy ``state`` into ``model`` in place after checking names and shapes; errors name ``source``."""
    expected = model.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    wrong = [
        f"{k} {tuple(state[k].shape)} vs {tuple(v.shape)}"
        for k, v in expected.items()
        if k in state and tuple(state[k].shape) != tuple(v.shape)
    ]
    problems = []
    if missing:
        problems.append(f"missing {len(missing)} tensor(s): {_few(missing)}")
    if unexpected:
        problems.append(f"{len(unexpected)} unexpected tensor(s): {_few(unexpected)}")
    if wrong:
        problems.append(f"{len(wrong)} shape mismatch(es) (saved vs model): {_few(wrong)}")
    if problems:
        raise CheckpointError(
            f"{source}: weights do not match the {type(model).__name__} architecture: " + "; ".join(problems)
        )
    try:
        model.load_state_dict(dict(state), strict=True)
    except (RuntimeError, ValueError) as exc:
        raise CheckpointError(f"{source}: cannot load weights into {type(model).__name__}: {exc}") from exc


def _few(names: list[str], limit: int = 5) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f", ... ({len(names) - limit} more)" if len(names) > limit else "")


def _rebuild(meta: dict[str, Any], json_path: Path) -> nn.Module:
    name = meta["model"].get("name")
    kwargs = meta["model"].get("kwargs") or {}
    if name is None:
        raise CheckpointError(
            f"{json_path}: the checkpoint does not name its architecture (saved from "
            f"{meta['model'].get('class')}); pass model=<an instance of it> to load_checkpoint"
        )
    from ann2snn.models import create_model
    from ann2snn.transforms.prepare import prepare

    def build() -> nn.Module:
        model = create_model(name, **kwargs)
        return model if meta["quant"] is None else prepare(model, QuantConfig.from_dict(meta["quant"]))

    try:
        # Size the architecture on the meta device first (no memory): kwargs from an untrusted JSON must not
        # allocate more than the verified weights file can fill (every stored element takes >= 1 byte).
        with torch.device("meta"):
            numel = sum(t.numel() for t in build().state_dict().values())
        if numel > meta["weights"]["size"]:
            raise CheckpointError(
                f"{json_path}: model {name!r} with {kwargs} has {numel} weights, more than the "
                f"{meta['weights']['size']}-byte weights file can hold; the metadata does not match the weights"
            )
        return build()
    except CheckpointError:
        raise
    except (Ann2SnnError, TypeError, ValueError, RuntimeError, OverflowError, MemoryError) as exc:
        raise CheckpointError(f"{json_path}: cannot rebuild model {name!r} from {kwargs}: {exc}") from exc
