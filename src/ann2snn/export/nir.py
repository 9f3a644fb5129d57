"""Export a converted SNN to NIR (the Neuromorphic Intermediate Representation, ``nir`` package).

What is exported, and how exactly (discrete time, dt = 1, direct encoding: the analog input is the same current
at every step, readout = mean over T of the output node):

* Conv2d → ``nir.Conv2d``, Linear → ``nir.Affine`` (``nir.Linear`` without bias), AvgPool2d and divisible
  AdaptiveAvgPool2d → ``nir.AvgPool2d``, flatten → ``nir.Flatten``, residual add → several edges into one node
  (NIR sums the inputs of a node), dropout/identity → nothing.
* IF neuron → ``nir.IF`` (r = 1); exponential-leak LIF (``v ← λ·v + I``) → ``nir.LIF`` with τ = 1/(1−λ),
  R = τ, v_leak = 0 (forward Euler with dt = 1 gives back ``λ·v + I``). NIR fires on ``v > v_threshold`` while
  ann2snn fires on ``v ≥ θ``: the exported ``v_threshold`` is θ moved down by one float step of the exported
  dtype, which makes the two tests identical for values of that dtype. ann2snn spikes carry amplitude θ: a
  ``nir.Scale`` node after the neuron multiplies them, or, when the neuron feeds only Conv2d/Affine/Linear nodes,
  θ is folded into their weights (bit-exact, since spikes are 0/1).
* NIR has no reset-by-subtraction, no initial potential and no linear leak. A neuron that uses one is refused
  (``ExportError``) unless ``extensions=True``: then the node is written with ``v_reset = 0`` plus the metadata
  keys ``ann2snn_reset = "subtract"``, ``ann2snn_reset_amount`` (θ), ``ann2snn_v_init`` (absolute initial
  potential) and ``ann2snn_leak_delta`` (subtracted every step), and the graph metadata
  ``ann2snn_extensions`` lists these nodes. A NIR tool that ignores this metadata computes a different network.
* The parallel IF neuron decides its spike count from all T inputs at once; NIR has no such primitive. Its exact
  serial equivalent (IF, v(0) = θ/2, reset by subtraction: same spike count for a constant input current) exists
  only for neuron layers whose input does not depend on another neuron layer; anything else is refused.
* Max-pool, BatchNorm left unfolded and other ops have no NIR node and are refused with the node's name.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import fx, nn
from torch.fx.passes.shape_prop import ShapeProp

from ann2snn.errors import ExportError
from ann2snn.export.nir_nodes import _Builder
from ann2snn.io import atomic_path
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
) -> Any:
    """Build the ``nir.NIRGraph`` of a converted SNN (see the module docstring for what is exact).

    Args:
        snn: A model returned by :func:`ann2snn.convert`.
        input_shape: Per-sample input shape, e.g. ``(1, 28, 28)``; may be left out when the first layer is Linear.
        extensions: Allow reset by subtraction, v(0) ≠ 0 and linear leak as ``ann2snn_*`` node metadata.
        fold_amplitude: Fold spike amplitudes θ into the next Conv2d/Affine weights where exact.

    Raises:
        ExportError: A layer or neuron that NIR cannot express (the message names it and says what to do).
    """
    import nir

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
    b = _Builder(snn, extensions)
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
    if fold_amplitude:
        b.fold_amplitudes()
    meta = {
        "ann2snn_timesteps": int(snn.timesteps),
        "ann2snn_dt": 1.0,
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
) -> Any:
    """Write ``snn`` as a NIR HDF5 file at ``path`` (atomically) and return the ``nir.NIRGraph``.

    Example:
        >>> snn = a2s.convert(qann, a2s.ConversionConfig(method="serial", reset="zero", v_init=0.0))  # doctest: +SKIP
        >>> export_nir(snn, "model.nir", input_shape=(1, 28, 28))  # doctest: +SKIP
    """
    import nir

    graph = to_nir(snn, input_shape, extensions=extensions, fold_amplitude=fold_amplitude)
    with atomic_path(path) as tmp:
        nir.write(tmp, graph)
    return graph
