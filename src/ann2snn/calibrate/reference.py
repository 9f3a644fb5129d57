"""The reference branch of error calibration and a two-branch (lockstep) graph runner.

Calibration compares, at every activation site, the converted network (calibrated branch) with the original ANN
(reference branch): QCFS at its own L, ClipReLU as trained, and ``ClipReLU(θ)`` with the site's neuron threshold θ
for a plain ReLU. :func:`reference_graph` rebuilds the ANN with the same fx node names as the SNN;
:class:`Lockstep` runs both graphs node by node on the same input so a site sees both pre-activations at once.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, fx, nn

from ann2snn.errors import CalibrationError
from ann2snn.layers.activations import ClipReLU
from ann2snn.simulate.model import SpikingModel
from ann2snn.transforms.fold_bn import fold_bn_graph
from ann2snn.transforms.sites import check_activations, modularize_sites
from ann2snn.transforms.trace import set_submodule, trace

SiteFn = Callable[[str, Tensor, Tensor], tuple[Tensor, Tensor]]


def reference_graph(ann: nn.Module, snn: SpikingModel) -> fx.GraphModule:
    """The ANN as an eval-mode GraphModule with the SNN's node names; ReLU sites become ``ClipReLU(θ_site)``.

    ``ann`` is not modified. Raises :class:`CalibrationError` when ``ann`` is not the model ``snn`` came from.
    """
    if not isinstance(ann, nn.Module):
        raise CalibrationError(f"calibration needs the original ANN as a torch.nn.Module, got {type(ann).__name__}")
    gm = trace(copy.deepcopy(ann).eval())
    check_activations(gm, "calibrate")
    modularize_sites(gm)
    fold_bn_graph(gm)
    ref_nodes = [(n.op, n.name) for n in gm.graph.nodes]
    snn_nodes = [(n.op, n.name) for n in snn.net.graph.nodes]
    if ref_nodes != snn_nodes:
        raise CalibrationError(
            "calibration: the ANN's graph does not match the SNN's (different model?); pass the ANN that "
            "ann2snn.convert turned into this SNN"
        )
    neurons = snn.neurons()
    for site in snn.sites:
        if site.source in ("relu", "clamp"):  # clamp(x, 0, b): θ ≤ b, so ClipReLU(θ) is the clipped ANN
            theta = torch.as_tensor(neurons[site.name].threshold).detach().clone()
            set_submodule(gm, site.name, ClipReLU(theta, learn_threshold=False))
    param = next(snn.parameters(), None)
    if param is not None:
        gm = gm.to(device=param.device, dtype=param.dtype)
    return gm.eval()


def _fetch(gm: fx.GraphModule, target: str) -> Any:
    obj: Any = gm
    for part in target.split("."):
        obj = getattr(obj, part)
    return obj


class Lockstep:
    """Run the reference and the calibrated graph together; ``site_fn`` rewrites both outputs at every site.

    Args:
        reference: the reference ANN graph (:func:`reference_graph`).
        calibrated: the SNN's graph (its parallel neurons in rate mode).
        sites: names of the activation-site modules, in graph order.
    """

    def __init__(self, reference: fx.GraphModule, calibrated: fx.GraphModule, sites: list[str]) -> None:
        self.ref = reference
        self.cal = calibrated
        self.sites = set(sites)
        self.nodes = list(calibrated.graph.nodes)

    def run(self, x: Tensor, site_fn: SiteFn) -> tuple[Tensor, Tensor]:
        """Both branches on input ``x``, from the input to the output; returns both outputs."""
        env_ref: dict[str, Any] = {}
        env_cal: dict[str, Any] = {}
        for node in self.nodes:
            if node.op == "output":
                return self.args(node, env_ref, env_cal)[0]
            self.step(node, x, env_ref, env_cal, site_fn)
        raise CalibrationError("calibration: the graph has no output node")

    @staticmethod
    def args(node: fx.Node, env_ref: dict[str, Any], env_cal: dict[str, Any]) -> tuple[Any, Any]:
        """The first argument of ``node`` in both branches."""
        first = node.args[0]
        ref = fx.node.map_arg(first, lambda n: env_ref[n.name])
        return ref, fx.node.map_arg(first, lambda n: env_cal[n.name])

    def step(self, node: fx.Node, x: Tensor, env_ref: dict[str, Any], env_cal: dict[str, Any], site_fn: SiteFn) -> None:
        """Run one (non-output) node in both branches: ``env_*[node.name]`` from the values of its inputs there."""
        with torch.no_grad():
            args_r: Any = fx.node.map_arg(node.args, lambda n: env_ref[n.name])
            kwargs_r = fx.node.map_arg(node.kwargs, lambda n: env_ref[n.name])
            args_c: Any = fx.node.map_arg(node.args, lambda n: env_cal[n.name])
            kwargs_c = fx.node.map_arg(node.kwargs, lambda n: env_cal[n.name])
            if node.op == "placeholder":
                env_ref[node.name] = env_cal[node.name] = x
            elif node.op == "call_module" and str(node.target) in self.sites:
                env_ref[node.name], env_cal[node.name] = site_fn(str(node.target), args_r[0], args_c[0])
            else:
                env_ref[node.name] = _call(self.ref, node, args_r, kwargs_r)
                env_cal[node.name] = _call(self.cal, node, args_c, kwargs_c)


def _call(gm: fx.GraphModule, node: fx.Node, args: Any, kwargs: Any) -> Any:
    if node.op == "get_attr":
        return _fetch(gm, str(node.target))
    if node.op == "call_module":
        return gm.get_submodule(str(node.target))(*args, **kwargs)
    if node.op == "call_function":
        return node.target(*args, **kwargs)  # type: ignore[operator]
    if node.op == "call_method":
        self_obj, *rest = args
        return getattr(self_obj, str(node.target))(*rest, **kwargs)
    raise CalibrationError(f"calibration: unexpected fx node kind {node.op!r} at '{node.name}'")


def channel_rows(t: Tensor) -> Tensor:
    """``[B, C, ...]`` → ``[C, B·...]`` (one row per channel; dim 1 is the channel, as for conv and linear)."""
    if t.dim() < 2:
        raise CalibrationError(f"calibration: an activation of shape {tuple(t.shape)} has no channel dim")
    return t.transpose(0, 1).reshape(t.shape[1], -1)


def channel_shape(t: Tensor) -> tuple[int, ...]:
    """Broadcast shape of a per-channel parameter for activations like ``t``: ``[C]`` or ``[C, 1, 1]``."""
    return (t.shape[1],) + (1,) * (t.dim() - 2)


def channel_mean(t: Tensor) -> Tensor:
    """Per-channel mean over the batch and all other dims, in float64. Shape: ``[B, C, ...]`` → ``[C]``."""
    return channel_rows(t.detach().to(torch.float64)).mean(dim=1)
