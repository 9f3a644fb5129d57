"""What each transform accepts: activation sites, layers that convert as they are, and unsupported ops.

This is the one place to teach ann2snn a new layer: ``register_layer(MyLayer)`` for a module that acts on each
sample independently and linearly (or commutes with sorted spike trains, like max-pool), or
``register_function(fn)`` for a function of the same kind.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import fx, nn

from ann2snn.layers.activations import QCFS, ClipReLU, StepReLU
from ann2snn.layers.neurons import SpikingNeuron

ACTIVATION_MODULES: tuple[type[nn.Module], ...] = (nn.ReLU, QCFS, ClipReLU, StepReLU)
RELU_FUNCTIONS: set[Any] = {F.relu, torch.relu, torch.relu_, getattr(F, "relu_", F.relu)}
RELU_METHODS = {"relu", "relu_"}
CLAMP_FUNCTIONS: set[Any] = {torch.clamp, torch.clip, torch.clamp_min}
CLAMP_METHODS = {"clamp", "clip", "clamp_min", "clamp_", "clamp_min_"}

# Layers that run unchanged on spikes (per-sample, affine or max-pool).
SUPPORTED_MODULES: set[type[nn.Module]] = {
    nn.Conv1d,
    nn.Conv2d,
    nn.Conv3d,
    nn.Linear,
    nn.BatchNorm1d,
    nn.BatchNorm2d,
    nn.BatchNorm3d,
    nn.AvgPool1d,
    nn.AvgPool2d,
    nn.AvgPool3d,
    nn.AdaptiveAvgPool1d,
    nn.AdaptiveAvgPool2d,
    nn.AdaptiveAvgPool3d,
    nn.MaxPool1d,
    nn.MaxPool2d,
    nn.MaxPool3d,
    nn.AdaptiveMaxPool1d,
    nn.AdaptiveMaxPool2d,
    nn.Flatten,
    nn.Unflatten,
    nn.Dropout,
    nn.Dropout1d,
    nn.Dropout2d,
    nn.Dropout3d,
    nn.Identity,
}
MAXPOOL_MODULES: tuple[type[nn.Module], ...] = (
    nn.MaxPool1d,
    nn.MaxPool2d,
    nn.MaxPool3d,
    nn.AdaptiveMaxPool1d,
    nn.AdaptiveMaxPool2d,
)
SUPPORTED_FUNCTIONS: set[Any] = {
    operator.add,
    operator.sub,
    operator.iadd,
    operator.neg,
    operator.getitem,
    getattr,
    torch.add,
    torch.sub,
    torch.flatten,
    torch.cat,
    torch.concat,
    torch.reshape,
    F.avg_pool1d,
    F.avg_pool2d,
    F.adaptive_avg_pool1d,
    F.adaptive_avg_pool2d,
    F.max_pool1d,
    F.max_pool2d,
    F.adaptive_max_pool2d,
    F.dropout,
    F.linear,
    F.conv2d,
}
MAXPOOL_FUNCTIONS: set[Any] = {F.max_pool1d, F.max_pool2d, F.adaptive_max_pool2d}
SCALAR_FUNCTIONS: set[Any] = {operator.mul, operator.truediv, torch.mul, torch.div}
SUPPORTED_METHODS = {
    "view",
    "reshape",
    "flatten",
    "size",
    "contiguous",
    "add",
    "add_",
    "sub",
    "unsqueeze",
    "squeeze",
    "dim",
    "mean",
}

UNSUPPORTED_HINT = (
    "supported activations are nn.ReLU, F.relu, torch.relu, Tensor.relu and clamp(min=0); other layers must act "
    "per sample and linearly (conv, linear, BN, avg-pool, flatten, dropout, add) or be max-pool; "
    "register a custom layer with ann2snn.transforms.register_layer"
)


def register_layer(cls: type[nn.Module]) -> type[nn.Module]:
    """Declare a module type that converts unchanged (acts per sample, affine or max-pool-like)."""
    SUPPORTED_MODULES.add(cls)
    return cls


def register_function(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Declare a function that converts unchanged (acts per sample, affine)."""
    SUPPORTED_FUNCTIONS.add(fn)
    return fn


def _is_zero(value: Any) -> bool:
    return isinstance(value, (int, float)) and value == 0


def is_relu_node(node: fx.Node, modules: dict[str, nn.Module]) -> bool:
    """A ReLU in any spelling: nn.ReLU, F.relu, torch.relu, Tensor.relu, clamp(min=0) without max."""
    if node.op == "call_module":
        return type(modules[str(node.target)]) is nn.ReLU
    if node.op == "call_function" and node.target in RELU_FUNCTIONS:
        return True
    if node.op == "call_method" and node.target in RELU_METHODS:
        return True
    is_clamp = (node.op == "call_function" and node.target in CLAMP_FUNCTIONS) or (
        node.op == "call_method" and node.target in CLAMP_METHODS
    )
    if is_clamp:
        low = node.args[1] if len(node.args) > 1 else node.kwargs.get("min")
        high = node.args[2] if len(node.args) > 2 else node.kwargs.get("max")
        return _is_zero(low) and high is None
    return False


def is_activation_site(node: fx.Node, modules: dict[str, nn.Module]) -> bool:
    if node.op == "call_module" and isinstance(modules[str(node.target)], ACTIVATION_MODULES):
        return True
    return is_relu_node(node, modules)


def is_maxpool(node: fx.Node, modules: dict[str, nn.Module]) -> bool:
    if node.op == "call_module":
        return isinstance(modules[str(node.target)], MAXPOOL_MODULES)
    return node.op == "call_function" and node.target in MAXPOOL_FUNCTIONS


def is_supported_layer(node: fx.Node, modules: dict[str, nn.Module]) -> bool:
    """True for nodes that run unchanged in the SNN (placeholders, outputs, linear per-sample ops)."""
    if node.op in ("placeholder", "output", "get_attr"):
        return True
    if node.op == "call_module":
        mod = modules[str(node.target)]
        return type(mod) in SUPPORTED_MODULES or isinstance(mod, SpikingNeuron)
    if node.op == "call_function":
        if node.target in SUPPORTED_FUNCTIONS:
            return True
        if node.target in SCALAR_FUNCTIONS:
            return sum(isinstance(a, fx.Node) for a in node.args) <= 1
        return False
    if node.op == "call_method":
        if node.target in SUPPORTED_METHODS:
            return True
        if node.target in ("mul", "div", "mul_", "div_"):
            return sum(isinstance(a, fx.Node) for a in node.args) <= 1
    return False


def describe(node: fx.Node, modules: dict[str, nn.Module]) -> str:
    """``module 'features.3' (GELU)`` style text naming a node for error messages."""
    if node.op == "call_module":
        return f"module '{node.target}' ({type(modules[str(node.target)]).__name__})"
    if node.op == "call_function":
        return f"node '{node.name}' (function {getattr(node.target, '__name__', node.target)})"
    return f"node '{node.name}' (method .{node.target}())"


UNSUPPORTED_ACTIVATION_MODULES: tuple[type[nn.Module], ...] = (
    nn.GELU,
    nn.SiLU,
    nn.Sigmoid,
    nn.Tanh,
    nn.LeakyReLU,
    nn.ELU,
    nn.Softplus,
    nn.Mish,
    nn.Hardswish,
    nn.Hardsigmoid,
    nn.ReLU6,
    nn.Hardtanh,
    nn.PReLU,
    nn.SELU,
    nn.CELU,
    nn.GLU,
    nn.Softmax,
    nn.LogSoftmax,
)
UNSUPPORTED_ACTIVATION_FUNCTIONS: set[Any] = {
    F.gelu,
    F.silu,
    torch.sigmoid,
    F.sigmoid,
    torch.tanh,
    F.tanh,
    F.leaky_relu,
    F.elu,
    F.softplus,
    F.mish,
    F.hardswish,
    F.relu6,
    F.hardtanh,
    F.selu,
    torch.softmax,
    F.softmax,
    F.log_softmax,
    torch.log_softmax,
}
UNSUPPORTED_ACTIVATION_METHODS = {"sigmoid", "tanh", "softmax", "log_softmax", "sigmoid_", "tanh_"}


def is_unsupported_activation(node: fx.Node, modules: dict[str, nn.Module]) -> bool:
    """A non-ReLU nonlinearity that neither prepare nor convert can turn into spiking neurons."""
    if node.op == "call_module":
        return isinstance(modules[str(node.target)], UNSUPPORTED_ACTIVATION_MODULES)
    if node.op == "call_function":
        return node.target in UNSUPPORTED_ACTIVATION_FUNCTIONS
    return node.op == "call_method" and node.target in UNSUPPORTED_ACTIVATION_METHODS


def is_inplace(node: fx.Node, modules: dict[str, nn.Module]) -> bool:
    """Whether an activation node overwrites its input tensor."""
    if node.op == "call_module":
        return bool(getattr(modules[str(node.target)], "inplace", False))
    if node.op == "call_method":
        return str(node.target).endswith("_")
    if node.target in (torch.relu_, getattr(F, "relu_", None)):
        return True
    return bool(node.kwargs.get("inplace", False) or (len(node.args) > 1 and node.args[1] is True))
