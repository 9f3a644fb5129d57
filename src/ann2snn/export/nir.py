"""Export a converted SNN to NIR (the Neuromorphic Intermediate Representation, ``nir`` package).

What is exported, and how exactly (discrete time with the consumer's step ``dt`` (default 1), direct encoding: the
analog input is the same current at every step, readout = mean over T of the output node), all in standard NIR
nodes:

* Conv2d → ``nir.Conv2d`` (a grouped conv as its dense block-diagonal equivalent), Linear → ``nir.Affine``
  (``nir.Linear`` without bias), AvgPool2d and divisible AdaptiveAvgPool2d → ``nir.AvgPool2d``, flatten →
  ``nir.Flatten``, residual add → several edges into one node (NIR sums the inputs of a node), dropout/identity →
  nothing.
* Serial neurons (:mod:`ann2snn.export.nir_neurons`): reset to zero with v(0) = 0 → ``nir.IF`` / ``nir.LIF``;
  reset by subtraction (any v(0), e.g. the default θ/2) → integrator ``nir.I`` / ``nir.LI`` + ``nir.Threshold`` +
  a feedback edge of weight −λθ (the previous step's spikes subtract θ: reset by subtraction, exactly). ``r`` and
  ``τ`` are written for the time step ``dt``.
* Spike amplitudes θ are folded into the next Conv2d/Affine/Linear weights, through avg/sum-pool and flatten
  (:mod:`ann2snn.export.nir_fold`); a ``nir.Scale`` node remains only where the spikes reach anything else.
* The parallel IF neuron decides its spike count from all T inputs at once; NIR has no such primitive. Its exact
  serial equivalent (v(0) = θ/2, reset by subtraction: same spike count for a constant input current) exists
  only for neuron layers whose input does not depend on another neuron layer; anything else is refused.
* Reset to zero with v(0) ≠ 0 and a linear leak without an exponential one have no standard form: refused
  (``ExportError``) unless ``extensions=True``, which writes them as ``ann2snn_*`` node metadata (listed in the graph
  metadata ``ann2snn_extensions``) that other NIR tools ignore.
* Max-pool, BatchNorm left unfolded and other ops have no NIR node and are refused with the node's name.
"""

from __future__ import annotations

import errno
import io
import logging
import os
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import fx, nn
from torch.fx.passes.shape_prop import ShapeProp

from ann2snn.errors import ExportError
from ann2snn.export.nir_fold import fold_amplitudes
from ann2snn.export.nir_nodes import _Builder
from ann2snn.io import atomic_write_bytes
from ann2snn.layers.neurons import RATE_MODE, SpikingNeuron
from ann2snn.simulate.model import SpikingModel

log = logging.getLogger("ann2snn")

__all__ = ["export_nir", "to_nir"]


def to_nir(
    snn: SpikingModel,
    input_shape: Sequence[int] | None = None,
    *,
    extensions: bool = False,
    fold_amplitude: bool = True,
    dt: float = 1.0,
) -> Any:
    """Build the ``nir.NIRGraph`` of a converted SNN (see the module docstring for what is exact).

    Args:
        snn: A model returned by :func:`ann2snn.convert`.
        input_shape: Per-sample input shape, e.g. ``(1, 28, 28)``; may be left out when the first layer is Linear.
        extensions: Allow v(0) ≠ 0 with reset to zero and a linear leak of IF neurons as ``ann2snn_*`` metadata.
        fold_amplitude: Fold spike amplitudes into the next Conv2d/Affine/Linear weights where exact.
        dt: The consumer's simulation time step (seconds or any unit): ``r = 1/dt`` for IF and integrators,
            ``τ = dt/(1−λ)`` for leaky neurons, so that forward Euler with step ``dt`` gives back ann2snn's
            discrete update. 1 (default) is exact in floats; other values up to round-off of ``dt·r``.

    Raises:
        ExportError: A layer or neuron that NIR cannot express (the message names it and says what to do).
    """
    import nir

    if not (dt > 0 and np.isfinite(dt)):
        raise ExportError(f"export_nir: dt must be a positive number, got {dt!r}")
    if not isinstance(snn, SpikingModel):
        raise ExportError(f"export_nir expects a model returned by ann2snn.convert, got {type(snn).__name__}")
    gm = snn.net
    if input_shape is None:
        first = next((m for m in gm.modules() if isinstance(m, (nn.Linear, nn.Conv2d))), None)
        if not isinstance(first, nn.Linear):
            raise ExportError("export_nir needs input_shape=(C, H, W) for a network that starts with a conv layer")
        input_shape = (first.in_features,)
    param = next(gm.parameters(), None)
    dtype = param.dtype if param is not None else torch.get_default_dtype()
    snn.reset()
    snn._set_parallel(RATE_MODE, snn.timesteps)
    try:
        with torch.no_grad():
            ShapeProp(gm).propagate(torch.zeros((1, *input_shape), dtype=dtype, device=getattr(param, "device", None)))
    except Exception as exc:
        raise ExportError(
            f"export_nir: the network does not run on inputs of shape {tuple(input_shape)}: {exc}"
        ) from exc
    finally:
        snn.reset()
    b = _Builder(snn, extensions, float(dt))
    out_node: fx.Node | None = None
    for node in gm.graph.nodes:
        name = node.name.replace(".", "_")
        if node.op == "placeholder":
            b.sources[node] = b.add("input", nir.Input(input_type={"input": np.array(list(input_shape))}), [])
            continue
        if node.op == "output":
            out_node = node.args[0] if isinstance(node.args[0], fx.Node) else None
            continue
        if node.op == "get_attr":
            raise ExportError(f"NIR export: constant tensor '{node.target}' read in the graph has no NIR form")
        if node.op == "call_module":
            b.sources[node] = b.module(node, b.modules[str(node.target)], name)
            if isinstance(b.modules[str(node.target)], SpikingNeuron):
                b.spiking.add(node)
        else:
            b.sources[node] = b.function(node, name)
        if any(isinstance(a, fx.Node) and a in b.spiking for a in node.all_input_nodes):
            b.spiking.add(node)
    if out_node is None or b.sources.get(out_node) is None:
        raise ExportError("NIR export: the network must return a single tensor")
    b.add("output", nir.Output(output_type={"output": np.array(b.shape(out_node))}), b.sources[out_node] or [])
    b.edges = fold_amplitudes(b.nodes, b.edges, b.amplitude, b.shapes, b.feedback, fold=fold_amplitude)
    meta = {
        "ann2snn_timesteps": int(snn.timesteps),
        "ann2snn_dt": float(dt),
        "ann2snn_encoding": "direct: the analog input is the same current at every step",
        "ann2snn_readout": "mean over the time steps of the output node",
        "ann2snn_method": snn.config.method,
        "ann2snn_extensions": ",".join(b.extended),
        "ann2snn_notes": "; ".join(b.notes),
    }
    try:
        graph = nir.NIRGraph(nodes=b.nodes, edges=b.edges, metadata=meta)
    except (ValueError, AssertionError) as exc:
        raise ExportError(f"NIR export: the NIR graph does not type-check: {exc}") from exc
    for note in b.notes:
        if "per-channel thresholds" in note:
            log.warning("NIR export: %s", note)
    if b.extended:
        log.warning(
            "NIR export: %d neuron node(s) need ann2snn_* metadata to simulate exactly: %s",
            len(b.extended),
            ", ".join(b.extended),
        )
    return graph


def export_nir(
    snn: SpikingModel,
    path: str | os.PathLike[str],
    input_shape: Sequence[int] | None = None,
    *,
    extensions: bool = False,
    fold_amplitude: bool = True,
    dt: float = 1.0,
) -> Any:
    """Write ``snn`` as a NIR HDF5 file at ``path`` and return the ``nir.NIRGraph`` (arguments as :func:`to_nir`).

    The HDF5 file is built in memory, then written to a temporary file in the destination folder, fsync'ed and
    renamed onto ``path``: a reader never sees a partial file, and a full disk is an ``ExportError`` that leaves
    no temporary file behind.

    Example:
        >>> snn = a2s.convert(qann, a2s.ConversionConfig(method="serial", timesteps=8))  # doctest: +SKIP
        >>> export_nir(snn, "model.nir", input_shape=(1, 28, 28))  # doctest: +SKIP
    """
    graph = to_nir(snn, input_shape, extensions=extensions, fold_amplitude=fold_amplitude, dt=dt)
    data = nir_bytes(graph)
    try:
        atomic_write_bytes(path, data)
    except OSError as exc:
        raise ExportError(_write_failure(Path(path), len(data), exc)) from exc
    return graph


def nir_bytes(graph: Any) -> bytes:
    """The NIR HDF5 file of ``graph`` as bytes (written by ``nir.write`` into memory, no file system involved)."""
    import nir

    buffer = io.BytesIO()
    nir.write(buffer, graph)
    return buffer.getvalue()


def _write_failure(path: Path, size: int, exc: OSError) -> str:
    where = path.parent if str(path.parent) else Path(".")
    try:
        free = f"{shutil.disk_usage(where).free:,} bytes free there"
    except OSError:
        free = "free space unknown"
    if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
        return (
            f"NIR export: no space to write {path} ({size:,} bytes needed, {free}); free some space or write elsewhere"
        )
    return f"NIR export: could not write {path} ({size:,} bytes): {exc.strerror or exc}"
