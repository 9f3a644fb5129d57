"""NIR node mapping: walks the fx graph of a converted SNN and builds the NIR nodes and edges of each layer.

How each layer maps to NIR (and what is refused) is described in :mod:`ann2snn.export.nir`; neurons are built by
:mod:`ann2snn.export.nir_neurons`.
"""

from __future__ import annotations

import operator
from typing import Any

import numpy as np
import torch
from torch import Tensor, fx, nn

from ann2snn.errors import ExportError
from ann2snn.export.nir_neurons import NeuronSpec, NIRRefusal, neuron_nodes
from ann2snn.layers.neurons import IFNeuron, ParallelIFNeuron, SpikingNeuron
from ann2snn.layers.step_neuron import StepIFNeuron
from ann2snn.simulate.model import SpikingModel

_ADD = {operator.add, operator.iadd, torch.add}
_FLATTEN_METHODS = {"flatten", "view", "reshape"}
_ALIAS_MODULES = (nn.Identity, nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d)
_POOL_HINT = "max-pool has no NIR node; train the model with average pooling (e.g. create_model(..., pool='avg'))"


def _np(t: Tensor) -> np.ndarray:
    return t.detach().cpu().numpy().copy()


def _dense_weight(conv: nn.Conv2d) -> np.ndarray:
    """The weight of ``conv`` as an ungrouped conv: block-diagonal, zeros between groups (same outputs).

    NIR 1.0.8 infers a Conv2d's input channels from ``weight.shape[1]`` whatever ``groups`` says, so a grouped
    conv fails the graph's type check, and several importers refuse ``groups > 1``.
    """
    w = _np(conv.weight)
    g = conv.groups
    if g == 1:
        return w
    out_g, in_g = conv.out_channels // g, conv.in_channels // g
    dense = np.zeros((conv.out_channels, conv.in_channels, *w.shape[2:]), dtype=w.dtype)
    for k in range(g):
        dense[k * out_g : (k + 1) * out_g, k * in_g : (k + 1) * in_g] = w[k * out_g : (k + 1) * out_g]
    return dense


def _pair(v: Any) -> np.ndarray:
    return np.array(list(v) if isinstance(v, (tuple, list)) else [v, v], dtype=np.int64)


class _Builder:
    """Walks the fx graph of a SpikingModel and collects NIR nodes, edges and notes."""

    def __init__(self, snn: SpikingModel, extensions: bool, dt: float) -> None:
        self.snn, self.extensions, self.dt = snn, extensions, dt
        self.modules = dict(snn.net.named_modules())
        self.nodes: dict[str, Any] = {}
        self.shapes: dict[str, tuple[int, ...]] = {}  # NIR node name -> per-sample output shape
        self.edges: list[tuple[str, str]] = []
        self.sources: dict[fx.Node, list[str] | None] = {}
        self.amplitude: dict[str, np.ndarray] = {}  # spiking NIR node -> amplitude of its 0/1 spikes
        self.feedback: set[str] = set()  # reset-feedback nodes (they read the 0/1 spikes themselves)
        self.extended: list[str] = []
        self.notes: list[str] = []
        self.spiking: set[fx.Node] = set()  # fx nodes whose value depends on some neuron's spikes

    # --- helpers --------------------------------------------------------------------------------------
    def shape(self, node: fx.Node) -> tuple[int, ...]:
        meta = node.meta.get("tensor_meta")
        if meta is None or not hasattr(meta, "shape"):
            raise ExportError(f"NIR export: node '{node.name}' does not produce a single tensor")
        return tuple(int(s) for s in meta.shape[1:])

    def inputs(self, node: fx.Node) -> list[str]:
        arg = node.args[0]
        src = self.sources.get(arg) if isinstance(arg, fx.Node) else None
        if src is None:
            raise ExportError(f"NIR export: node '{node.name}' reads something that is not a tensor of the network")
        return src

    def add(self, name: str, nir_node: Any, srcs: list[str], shape: tuple[int, ...] | None = None) -> list[str]:
        self.nodes[name] = nir_node
        if shape is not None:
            self.shapes[name] = shape
        for s in srcs:
            if (s, name) in self.edges:
                raise ExportError(
                    f"NIR export: '{name}' adds the same signal '{s}' twice; NIR sums distinct edges only"
                )
            self.edges.append((s, name))
        return [name]

    # --- node kinds -----------------------------------------------------------------------------------
    def module(self, node: fx.Node, mod: nn.Module, name: str) -> list[str] | None:
        import nir

        srcs = self.inputs(node)
        if isinstance(mod, SpikingNeuron):
            return self.neuron(node, mod, name, srcs)
        if isinstance(mod, _ALIAS_MODULES):
            return srcs
        if isinstance(mod, nn.Conv2d):
            if mod.padding_mode != "zeros":
                raise ExportError(
                    f"NIR export: conv '{node.target}' uses padding_mode={mod.padding_mode!r}; "
                    "NIR Conv2d pads with zeros only"
                )
            bias = mod.bias if mod.bias is not None else torch.zeros(mod.out_channels, dtype=mod.weight.dtype)
            padding = mod.padding if isinstance(mod.padding, str) else _pair(mod.padding)
            if mod.groups > 1:
                self.notes.append(f"grouped conv '{node.target}' ({mod.groups} groups) written as a dense conv")
            conv = nir.Conv2d(
                input_shape=self.shape(node.args[0])[1:],  # type: ignore[arg-type]
                weight=_dense_weight(mod),
                stride=_pair(mod.stride),
                padding=padding,
                dilation=_pair(mod.dilation),
                groups=1,
                bias=_np(bias),
            )
            return self.add(name, conv, srcs, self.shape(node))
        if isinstance(mod, nn.Linear):
            lin = (
                nir.Linear(weight=_np(mod.weight))
                if mod.bias is None
                else nir.Affine(weight=_np(mod.weight), bias=_np(mod.bias))
            )
            return self.add(name, lin, srcs, self.shape(node))
        if isinstance(mod, (nn.AvgPool2d, nn.AdaptiveAvgPool2d)):
            return self.avgpool(node, mod, name, srcs)
        if isinstance(mod, nn.Flatten):
            return self.flatten(node, name, srcs, mod.start_dim, mod.end_dim)
        if isinstance(mod, (nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d, nn.AdaptiveMaxPool2d)):
            raise ExportError(f"NIR export: module '{node.target}' ({type(mod).__name__}): {_POOL_HINT}")
        raise ExportError(
            f"NIR export: module '{node.target}' ({type(mod).__name__}) has no NIR equivalent; "
            "NIR covers Conv2d, Linear, AvgPool2d, Flatten, add and IF/LIF neurons"
        )

    def avgpool(self, node: fx.Node, mod: nn.Module, name: str, srcs: list[str]) -> list[str]:
        import nir

        c, h, w = self.shape(node.args[0])  # type: ignore[arg-type]
        if isinstance(mod, nn.AdaptiveAvgPool2d):
            oh, ow = _pair(mod.output_size)
            oh, ow = oh or h, ow or w
            if h % oh or w % ow:
                raise ExportError(
                    f"NIR export: adaptive pool '{node.target}' maps {h}x{w} to {oh}x{ow}, which is "
                    "not one fixed window; use an input size divisible by the output size"
                )
            kernel, stride, padding = np.array([h // oh, w // ow]), np.array([h // oh, w // ow]), np.array([0, 0])
        else:
            assert isinstance(mod, nn.AvgPool2d)
            kernel, padding = _pair(mod.kernel_size), _pair(mod.padding)
            stride = _pair(mod.stride if mod.stride is not None else mod.kernel_size)
            if mod.ceil_mode or mod.divisor_override is not None or (padding.any() and not mod.count_include_pad):
                raise ExportError(
                    f"NIR export: avg-pool '{node.target}' uses ceil_mode/divisor_override/"
                    "count_include_pad=False, which NIR AvgPool2d cannot express"
                )
        pool = nir.AvgPool2d(kernel_size=kernel, stride=stride, padding=padding)
        return self.add(name, pool, srcs, self.shape(node))

    def flatten(self, node: fx.Node, name: str, srcs: list[str], start: int = 1, end: int = -1) -> list[str]:
        import nir

        in_shape = self.shape(node.args[0])  # type: ignore[arg-type]
        if self.shape(node) == in_shape:
            return srcs
        if start < 1:
            raise ExportError(f"NIR export: node '{node.name}' flattens the batch dimension")
        end_nir = end if end < 0 else end - 1
        flat = nir.Flatten(input_type={"input": np.array(in_shape)}, start_dim=start - 1, end_dim=end_nir)
        if tuple(int(s) for s in flat.output_type["output"]) != self.shape(node):
            raise ExportError(f"NIR export: reshape '{node.name}' {in_shape} -> {self.shape(node)} is not a flatten")
        return self.add(name, flat, srcs, self.shape(node))

    def neuron(self, node: fx.Node, mod: SpikingNeuron, name: str, srcs: list[str]) -> list[str]:
        shape = self.shape(node)
        threshold: Tensor = mod.threshold  # type: ignore[assignment]
        theta = torch.broadcast_to(threshold.detach().cpu(), shape).contiguous()
        amplitude = theta
        if isinstance(mod, StepIFNeuron):
            raise NIRRefusal(
                f"NIR export: StepReLU neuron '{node.target}' integrates its whole input before firing and emits a "
                "graded last spike above n·θ_s; NIR has no such neuron",
                "Convert with ConversionConfig(method='serial') and export that network instead",
                "Use --method serial",
            )
        if isinstance(mod, ParallelIFNeuron):
            if node.args[0] in self.spiking:
                raise NIRRefusal(
                    f"NIR export: parallel neuron '{node.target}' integrates all T input steps before it fires and "
                    "has no NIR primitive; its serial equivalent (IF, v(0)=θ/2, reset by subtraction) gives the "
                    "same spike count only for a constant input, but this layer's input comes from spiking neurons",
                    "Convert with ConversionConfig(method='serial') and export that network instead",
                    "Use --method serial",
                )
            if bool(torch.any(mod.bias != 0)):  # type: ignore[arg-type]
                raise NIRRefusal(
                    f"NIR export: parallel neuron '{node.target}' has a calibration bias ψ_DA",
                    "Export the network before distribution-aware calibration, or convert with method='serial'",
                    "Use --method serial",
                )
            amplitude = torch.broadcast_to(mod.amplitude.detach().cpu(), shape).contiguous()
            spec = NeuronSpec(str(node.target), _np(theta), 0.5, 1.0, 0.0, "subtract")
            self.notes.append(
                f"parallel neuron '{node.target}' exported as its serial equivalent (IF, v(0)=θ/2, "
                "reset by subtraction): same spike counts and mean output, spikes spread in time"
            )
        elif type(mod) is IFNeuron:  # not its subclasses: SRP/COS pre-simulation and Li-calibrated neurons differ
            spec = NeuronSpec(str(node.target), _np(theta), mod.v_init, mod.leak, mod.leak_delta, mod.reset_mode)
        else:
            raise ExportError(f"NIR export: neuron '{node.target}' ({type(mod).__name__}) has no NIR mapping")
        parts, internal, entry = neuron_nodes(spec, self.dt, self.extensions)
        if "v" not in parts and np.unique(spec.theta).size > 1:
            self.notes.append(
                f"neuron '{node.target}' has per-channel thresholds: snnTorch and SpikingJelly import IF/LIF nodes "
                "with one threshold per layer only (convert with per_channel=False for them)"
            )
        names = {key: name if key == "out" else f"{name}_{key}" for key in parts}
        for key, part in parts.items():
            self.nodes[names[key]] = part
            self.shapes[names[key]] = shape
        self.edges.extend((names[a], names[b]) for a, b in internal)
        self.add(names[entry], parts[entry], srcs)
        if "reset" in names:
            self.feedback.add(names["reset"])
        if parts["out"].metadata:
            self.extended.append(name)
        self.amplitude[name] = _np(amplitude.to(threshold.dtype))
        return [name]

    def function(self, node: fx.Node, name: str) -> list[str] | None:
        if node.op == "call_function" and node.target in _ADD:
            args = [a for a in node.args if isinstance(a, fx.Node)]
            if len(args) != 2 or len(node.args) != 2 or node.kwargs:
                raise ExportError(f"NIR export: add '{node.name}' with a constant or alpha has no NIR form")
            srcs = [s for a in args for s in (self.sources.get(a) or [])]
            if len(set(srcs)) != len(srcs):
                raise ExportError(f"NIR export: '{node.name}' adds a signal to itself; NIR sums distinct edges only")
            return srcs
        if node.op == "call_function" and node.target is torch.flatten:
            start = node.args[1] if len(node.args) > 1 else node.kwargs.get("start_dim", 0)
            end = node.args[2] if len(node.args) > 2 else node.kwargs.get("end_dim", -1)
            return self.flatten(node, name, self.inputs(node), int(start), int(end))  # type: ignore[arg-type]
        if node.op == "call_method" and node.target in _FLATTEN_METHODS:
            return self.flatten(node, name, self.inputs(node), 1, -1)
        if node.op == "call_method" and node.target in ("size", "dim"):
            return None
        if node.op == "call_function" and node.target is getattr:
            return None
        what = getattr(node.target, "__name__", node.target)
        hint = _POOL_HINT if "max_pool" in str(what) else "it has no NIR node"
        raise ExportError(f"NIR export: node '{node.name}' ({node.op} {what}): {hint}")
