"""Saved SNNs: a folder with the converted network, the ANN it came from and the conversion report; no pickle.

A saved SNN ``DIR`` holds:

- ``DIR/ann.{json,safetensors}``: the source ANN as an ordinary checkpoint (see :mod:`ann2snn.export.checkpoint`);
- ``DIR/snn.safetensors``: every tensor of the SNN's ``state_dict`` (weights after BN folding and weight refit,
  per-neuron thresholds θ, DA offsets ψ and amplitude corrections φ, Li biases and potential offsets);
- ``DIR/snn.json``: format version, the :class:`~ann2snn.config.ConversionConfig`, the converted sites, each
  neuron's class with a summary (shape, min, mean, max) of its θ/ψ/φ, the conversion log, the SHA-256 of
  ``snn.safetensors``, the source checkpoint's path and weights hash, and a hash of the rebuilt structure;
- ``DIR/report.md``: the per-layer conversion summary (:meth:`SpikingModel.summary`).

The folder is written next to ``DIR`` under a temporary name and renamed into place, so ``DIR`` is either the old
complete SNN or the new one. Loading re-converts the stored ANN architecture with the stored thresholds (no data),
swaps in the neuron classes calibration installed, copies every saved tensor in and checks that the structure hash
matches, so the loaded SNN computes bit-identical outputs.

Example:
    >>> import tempfile, torch, ann2snn as a2s
    >>> from torch import nn
    >>> ann = nn.Sequential(nn.Flatten(), nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))
    >>> data = [torch.rand(8, 1, 2, 2)]
    >>> snn = a2s.convert(ann, a2s.ConversionConfig(timesteps=4), calibration_data=data)
    >>> folder = save_snn(tempfile.mkdtemp() + "/snn", snn, ann)
    >>> loaded = load_snn(folder, model=ann).snn
    >>> x = torch.rand(4, 5, 1, 2, 2)
    >>> torch.equal(loaded(x), snn(x))
    True
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load as load_tensors_from_bytes
from safetensors.torch import save as save_tensors_to_bytes
from torch import nn

from ann2snn.config import ConversionConfig
from ann2snn.errors import Ann2SnnError, CheckpointError, ConfigError
from ann2snn.export.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from ann2snn.export.checkpoint_format import _storable
from ann2snn.simulate.model import SiteInfo, SpikingModel

__all__ = ["SNN_FORMAT", "SNN_FORMAT_VERSION", "SavedSNN", "is_saved_snn", "load_snn", "save_snn"]

SNN_FORMAT = "ann2snn-snn"
SNN_FORMAT_VERSION = 1
ANN_STEM, SNN_WEIGHTS, SNN_META, REPORT = "ann", "snn.safetensors", "snn.json", "report.md"

PathLike = str | os.PathLike[str]


@dataclasses.dataclass
class SavedSNN:
    """A loaded SNN folder: the SNN, the ANN checkpoint it came from and the ``snn.json`` metadata."""

    snn: SpikingModel
    ann: Checkpoint
    meta: dict[str, Any]
    path: Path


def is_saved_snn(path: PathLike) -> bool:
    """Whether ``path`` is a folder written by :func:`save_snn`."""
    return (Path(path) / SNN_META).is_file()


def _structure_hash(snn: SpikingModel) -> str:
    """Hash of the graph code and the module tree (classes and their settings) of ``snn``."""
    tree = "\n".join(f"{name}: {child!r}" for name, child in snn.net.named_children())
    return hashlib.sha256((snn.net.code + "\n" + tree).encode()).hexdigest()


def _stats(t: torch.Tensor) -> dict[str, Any]:
    f = t.detach().double()
    return {
        "shape": list(t.shape),
        "min": f.min().item(),
        "mean": f.mean().item(),
        "max": f.max().item(),
    }


def _neuron_summary(snn: SpikingModel) -> dict[str, Any]:
    """Per neuron: its class and a summary of θ (threshold), ψ (bias), φ (amplitude_correction), v_offset."""
    out: dict[str, Any] = {}
    for name, m in snn.neurons().items():
        entry: dict[str, Any] = {"class": type(m).__name__}
        for key, buf in m.named_buffers(recurse=False):
            if buf is not None and buf.numel() > 0:
                entry[key] = _stats(buf)
        out[name] = entry
    return out


# ------------------------------------------------------------------------------------------------------ saving
def save_snn(
    path: PathLike,
    snn: SpikingModel,
    ann: Checkpoint | nn.Module,
    *,
    source: PathLike | None = None,
) -> Path:
    """Save ``snn`` and the ANN it was converted from into the folder ``path``; returns the folder.

    Args:
        path: The folder to write (replaced atomically if it holds a saved SNN; must not be another folder).
        snn: The SNN returned by :func:`ann2snn.convert` (not modified).
        ann: Its source ANN: a loaded :class:`Checkpoint` (its metadata is kept) or the model itself (then it
            needs ``model_name``/``model_kwargs`` attributes, as models of :func:`ann2snn.models.create_model`
            have, or it loads only with ``load_snn(..., model=...)``).
        source: Where the ANN came from, recorded in ``snn.json`` (default: the checkpoint's path).

    Raises:
        ConfigError: ``path`` is an existing file or a non-empty folder that is not a saved SNN.
        CheckpointError: a value cannot be stored.
    """
    if not isinstance(snn, SpikingModel):
        raise ConfigError(f"save_snn expects the SpikingModel returned by ann2snn.convert, got {type(snn).__name__}")
    target = Path(path)
    if target.exists() and not (target.is_dir() and (is_saved_snn(target) or not any(target.iterdir()))):
        raise ConfigError(
            f"{target} exists and is not a saved SNN folder; choose a new folder for the SNN (e.g. {target}_snn)"
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    try:
        _write_folder(tmp, snn, ann, source)
        _swap_in(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target


def _write_folder(folder: Path, snn: SpikingModel, ann: Checkpoint | nn.Module, source: PathLike | None) -> None:
    if isinstance(ann, Checkpoint):
        meta = ann.meta
        save_checkpoint(
            folder / ANN_STEM,
            ann.model,
            model_name=meta["model"].get("name"),
            model_kwargs=meta["model"].get("kwargs"),
            quant=meta["quant"],
            dataset=meta.get("dataset"),
            metrics=meta.get("metrics"),
            extra=meta.get("extra"),
        )
        source_info = {"path": str(source or ann.path), "sha256": meta["weights"]["sha256"]}
    else:
        save_checkpoint(folder / ANN_STEM, ann)
        source_info = {"path": None if source is None else str(source), "sha256": None}
    tensors = {k: _storable(v) for k, v in snn.state_dict().items()}
    data = save_tensors_to_bytes(tensors, metadata={"format": SNN_FORMAT, "format_version": str(SNN_FORMAT_VERSION)})
    from ann2snn import __version__

    seconds = getattr(snn, "calibration_seconds", None)
    meta_out = {
        "format": SNN_FORMAT,
        "format_version": SNN_FORMAT_VERSION,
        "ann2snn_version": __version__,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "weights": {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)},
        "source": source_info,
        "config": snn.config.to_dict(),
        "execution": snn.execution,
        "sites": [dataclasses.asdict(s) for s in snn.sites],
        "neurons": _neuron_summary(snn),
        "log": list(snn.log),
        "calibration_seconds": seconds if isinstance(seconds, float) else None,
        "structure_sha256": _structure_hash(snn),
    }
    (folder / SNN_WEIGHTS).write_bytes(data)
    (folder / REPORT).write_text(f"# Conversion report\n\n```\n{snn.summary()}\n```\n", encoding="utf-8")
    (folder / SNN_META).write_text(json.dumps(meta_out, indent=2, allow_nan=False) + "\n", encoding="utf-8")
    for f in folder.iterdir():
        with open(f, "rb") as handle:
            os.fsync(handle.fileno())


def _swap_in(tmp: Path, target: Path) -> None:
    """Move the complete folder ``tmp`` onto ``target`` (keeping the old one until the new one is in place)."""
    old = None
    if target.exists():
        old = target.with_name(f".{target.name}.old-{os.getpid()}")
        os.replace(target, old)
    try:
        os.replace(tmp, target)
    except BaseException:
        if old is not None:
            os.replace(old, target)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
    fd = os.open(target.parent, os.O_RDONLY)
    with contextlib.suppress(OSError):
        os.fsync(fd)
    os.close(fd)


# ----------------------------------------------------------------------------------------------------- loading
def _calibrated_if(m: nn.Module) -> nn.Module:
    from ann2snn.calibrate.li import CalibratedIFNeuron

    return CalibratedIFNeuron(m.threshold, v_init=m.v_init)  # type: ignore[arg-type]


# Neuron classes error calibration installs in place of the converted ones, and how to make one from it.
NEURON_SWAPS: dict[str, Callable[[nn.Module], nn.Module]] = {"CalibratedIFNeuron": _calibrated_if}


def load_snn(path: PathLike, map_location: str | torch.device = "cpu", *, model: nn.Module | None = None) -> SavedSNN:
    """Load a folder written by :func:`save_snn`, verifying hashes and structure.

    Args:
        path: The saved SNN folder.
        map_location: Device of the returned ANN and SNN.
        model: Optional ANN of the saved architecture (see :func:`~ann2snn.export.checkpoint.load_checkpoint`).

    Raises:
        CheckpointError: missing or corrupt files, or an SNN this version of ann2snn rebuilds differently.
    """
    folder = Path(path)
    meta_path, weights_path = folder / SNN_META, folder / SNN_WEIGHTS
    if not meta_path.is_file():
        raise CheckpointError(f"{folder} is not a saved SNN (no {SNN_META}); write one with `ann2snn convert --out`")
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"{meta_path}: not valid JSON (truncated or corrupt?): {exc}") from exc
    if not isinstance(meta, dict) or meta.get("format") != SNN_FORMAT:
        raise CheckpointError(f"{meta_path}: not an ann2snn SNN file (format {SNN_FORMAT!r} expected)")
    if meta.get("format_version") != SNN_FORMAT_VERSION:
        raise CheckpointError(
            f"{meta_path}: SNN format version {meta.get('format_version')!r} is not supported "
            f"(this ann2snn reads version {SNN_FORMAT_VERSION}); re-convert the ANN"
        )
    try:
        data = weights_path.read_bytes()
    except OSError as exc:
        raise CheckpointError(f"{weights_path}: cannot read: {exc}") from exc
    if hashlib.sha256(data).hexdigest() != meta["weights"]["sha256"]:
        raise CheckpointError(f"{weights_path}: SHA-256 does not match {meta_path} (corrupt or replaced file)")
    state = load_tensors_from_bytes(data)
    ann = load_checkpoint(folder / ANN_STEM, model=model)
    try:
        config = ConversionConfig.from_dict(meta["config"])
        sites = [SiteInfo(**s) for s in meta["sites"]]
        thresholds = {s.name: (state[f"net.{s.name}.threshold"], s.threshold_from) for s in sites}
        from ann2snn.transforms.convert import rebuild

        snn = rebuild(ann.model, config, thresholds)
    except (Ann2SnnError, KeyError, TypeError) as exc:
        raise CheckpointError(f"{meta_path}: cannot rebuild the SNN from the saved ANN: {exc}") from exc
    _swap_neurons(snn, meta["neurons"], meta_path)
    _adopt(snn, state, weights_path)
    snn.sites, snn.log = sites, list(meta["log"])
    if meta.get("calibration_seconds") is not None:
        snn.calibration_seconds = meta["calibration_seconds"]  # type: ignore[assignment]
    if _structure_hash(snn) != meta["structure_sha256"]:
        raise CheckpointError(
            f"{meta_path}: the rebuilt SNN differs from the saved one (saved by ann2snn "
            f"{meta.get('ann2snn_version')}, or changed after conversion); re-convert the ANN with `ann2snn convert`"
        )
    snn.to(map_location)
    ann.model.to(map_location)
    return SavedSNN(snn=snn.train(False), ann=ann, meta=meta, path=folder)


def _swap_neurons(snn: SpikingModel, saved: dict[str, Any], source: Path) -> None:
    from ann2snn.transforms.trace import set_submodule

    neurons = snn.neurons()
    if set(neurons) != set(saved):
        raise CheckpointError(f"{source}: saved neurons {sorted(saved)} do not match the rebuilt {sorted(neurons)}")
    for name, m in neurons.items():
        cls = saved[name]["class"]
        if type(m).__name__ == cls:
            continue
        if cls not in NEURON_SWAPS:
            raise CheckpointError(f"{source}: neuron '{name}' is a {cls}, which this ann2snn cannot rebuild")
        set_submodule(snn.net, name, NEURON_SWAPS[cls](m))


def _adopt(snn: SpikingModel, state: dict[str, torch.Tensor], source: Path) -> None:
    """Install every saved tensor as the buffer or parameter of its name (shapes may differ from the skeleton)."""
    expected = set(snn.state_dict())
    missing, unexpected = sorted(expected - set(state)), []
    for key, value in state.items():
        owner_name, _, attr = key.rpartition(".")
        owner = snn.get_submodule(owner_name) if owner_name else snn
        if attr in owner._buffers:
            owner._buffers[attr] = value.clone()
        elif attr in owner._parameters:
            old = owner._parameters[attr]
            requires_grad = True if old is None else old.requires_grad
            owner._parameters[attr] = nn.Parameter(value.clone(), requires_grad=requires_grad)
        else:
            unexpected.append(key)
    if missing or unexpected:
        raise CheckpointError(
            f"{source}: tensors do not match the rebuilt SNN: missing {missing[:5]}, unexpected {unexpected[:5]}"
        )
