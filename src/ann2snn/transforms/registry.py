"""What each transform accepts: activation sites, the op-support table, and what stays out of reach.

This is the one place to teach ann2snn a new op. An op converts unchanged when it acts on every time step and
every sample on its own and is affine (conv, linear, BN in eval, avg-pool, add), only moves or copies values
(permutations, views, concatenation, splitting, zero padding), or commutes with sorted spike trains (max-pool).
Declare such an op with :func:`register_layer` (a module class), :func:`register_function` (a function) or
:func:`register_method` (a ``Tensor`` method), each with a ``why`` that says why it is exact on spikes.

Parallel spike mode runs the graph once on the time-flattened tensor ``[T·B, ...]``, so an op is exact only if it
also acts on each row of dim 0 on its own: entries may carry a ``check`` that refuses a use mixing dim 0
(``cat(dim=0)``, ``x.mean()``, a hard-coded batch size in ``view``, ...; see :mod:`ann2snn.transforms.batchdim`).
"""

from __future__ import annotations

import dataclasses
import operator
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import fx, nn

from ann2snn.errors import ConfigError
from ann2snn.layers.activations import QCFS, ClipReLU, StepReLU
from ann2snn.layers.neurons import SpikingNeuron
from ann2snn.transforms import batchdim as bd

Check = Callable[[fx.Node, "nn.Module | None"], "str | None"]


@dataclasses.dataclass(frozen=True)
class OpRule:
    """One entry of the op-support table: why the op is exact on spikes, and an optional per-use check.

    ``check(node, module)`` returns ``None`` when this use is exact, or a short reason why it is not.
    """

    why: str
    check: Check | None = None


# ---------------------------------------------------------------------------------------------------------------
# Activation sites: ReLU forms, clipped ReLUs (ReLU6, hard-tanh(0, b), clamp(0, b)) and ann2snn's own activations.

ACTIVATION_MODULES: tuple[type[nn.Module], ...] = (nn.ReLU, QCFS, ClipReLU, StepReLU)
RELU_FUNCTIONS: set[Any] = {F.relu, torch.relu, torch.relu_, getattr(F, "relu_", F.relu)}
RELU_METHODS = {"relu", "relu_"}
CLAMP_FUNCTIONS: set[Any] = {torch.clamp, torch.clip, torch.clamp_min, getattr(torch, "clamp_", torch.clamp)}
CLAMP_METHODS = {"clamp", "clip", "clamp_min", "clamp_", "clip_", "clamp_min_"}
HARDTANH_FUNCTIONS: set[Any] = {F.hardtanh, getattr(F, "hardtanh_", F.hardtanh)}
RELU6_FUNCTIONS: set[Any] = {F.relu6}


def _arg(node: fx.Node, pos: int, name: str, default: Any = None) -> Any:
    return node.args[pos] if len(node.args) > pos else node.kwargs.get(name, default)


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _as_bound(value: Any) -> float | None:
    if value is None:
        return None
    number = _number(value)
    return float("nan") if number is None else number


def clip_bounds(node: fx.Node, modules: dict[str, nn.Module]) -> tuple[float | None, float | None] | None:
    """``(low, high)`` of a clamp-like node (ReLU6, hard-tanh, clamp, clip, clamp_min), ``None`` for other nodes.

    A bound that is not a number (a tensor, a graph value) is returned as ``nan``.
    """
    if node.op == "call_module":
        mod = modules[str(node.target)]
        return (float(mod.min_val), float(mod.max_val)) if isinstance(mod, nn.Hardtanh) else None
    if node.op == "call_function" and node.target in RELU6_FUNCTIONS:
        return 0.0, 6.0
    if node.op == "call_function" and node.target in HARDTANH_FUNCTIONS:
        low, high = _arg(node, 1, "min_val", -1.0), _arg(node, 2, "max_val", 1.0)
    elif (node.op == "call_function" and node.target in CLAMP_FUNCTIONS) or (
        node.op == "call_method" and node.target in CLAMP_METHODS
    ):
        low = _arg(node, 1, "min")
        high = None if "clamp_min" in str(getattr(node.target, "__name__", node.target)) else _arg(node, 2, "max")
    else:
        return None
    return _as_bound(low), _as_bound(high)


def clamp_bound(node: fx.Node, modules: dict[str, nn.Module]) -> float | None:
    """The upper bound b of a clipped-ReLU site ``clamp(x, 0, b)`` (ReLU6, hard-tanh(0, b)), else ``None``."""
    bounds = clip_bounds(node, modules)
    if bounds is None or bounds[0] != 0 or bounds[1] is None or not bounds[1] > 0:
        return None
    return bounds[1]


def is_relu_node(node: fx.Node, modules: dict[str, nn.Module]) -> bool:
    """A ReLU in any spelling: nn.ReLU, F.relu, torch.relu, Tensor.relu, clamp(min=0) without max."""
    if node.op == "call_module":
        return type(modules[str(node.target)]) is nn.ReLU
    if node.op == "call_function" and node.target in RELU_FUNCTIONS:
        return True
    if node.op == "call_method" and node.target in RELU_METHODS:
        return True
    bounds = clip_bounds(node, modules)
    return bounds is not None and bounds[0] == 0 and bounds[1] is None


def is_activation_site(node: fx.Node, modules: dict[str, nn.Module]) -> bool:
    """ReLU forms, clipped ReLUs ``clamp(x, 0, b)`` with b > 0, and QCFS/ClipReLU/StepReLU modules."""
    if node.op == "call_module" and isinstance(modules[str(node.target)], ACTIVATION_MODULES):
        return True
    return is_relu_node(node, modules) or clamp_bound(node, modules) is not None


def is_inplace(node: fx.Node, modules: dict[str, nn.Module]) -> bool:
    """Whether an activation node overwrites its input tensor."""
    if node.op == "call_module":
        return bool(getattr(modules[str(node.target)], "inplace", False))
    if node.op == "call_method":
        return str(node.target).endswith("_")
    if str(getattr(node.target, "__name__", "")).endswith("_"):
        return True
    if node.target in HARDTANH_FUNCTIONS:
        return bool(_arg(node, 3, "inplace", False))
    return bool(_arg(node, 1, "inplace", False)) if node.target in RELU_FUNCTIONS | RELU6_FUNCTIONS else False


# ---------------------------------------------------------------------------------------------------------------
# The op-support table.

AFFINE = "affine per sample and per time step: the time mean of its outputs is its output of the time mean"
MOVES = "only moves, copies or selects values of each sample: spike trains pass through unchanged"
NO_DATA = "touches no spike values (shape arithmetic, asserts on shapes, output containers)"
IDENTITY_EVAL = "the identity in eval mode"
MAXPOOL = "commutes with sorted equal-amplitude spike trains (see the max-pool note of convert)"

_CONV_LINEAR = "a linear map per sample (affine with its bias)"

SUPPORTED_MODULES: dict[type[nn.Module], OpRule] = {
    **{cls: OpRule(_CONV_LINEAR) for cls in (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)},
    **{
        cls: OpRule("affine per channel in eval (running statistics)", bd.check_bn_module)
        for cls in (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)
    },
    **{
        cls: OpRule("a mean over windows of each sample: " + AFFINE)
        for cls in (nn.AvgPool1d, nn.AvgPool2d, nn.AvgPool3d)
    },
    **{
        cls: OpRule("a mean over windows of each sample: " + AFFINE)
        for cls in (nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d, nn.AdaptiveAvgPool3d)
    },
    **{
        cls: OpRule(MAXPOOL)
        for cls in (nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d, nn.AdaptiveMaxPool1d, nn.AdaptiveMaxPool2d)
    },
    nn.Flatten: OpRule(MOVES),
    nn.Unflatten: OpRule(MOVES, bd.check_unflatten_module),
    nn.ChannelShuffle: OpRule("a permutation of channels: " + MOVES),
    **{cls: OpRule(IDENTITY_EVAL) for cls in (nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d, nn.Identity)},
    **{
        cls: OpRule("zero padding adds level-0 (silent) trains; other values are constant: " + AFFINE)
        for cls in (nn.ZeroPad1d, nn.ZeroPad2d, nn.ZeroPad3d, nn.ConstantPad1d, nn.ConstantPad2d, nn.ConstantPad3d)
    },
    **{
        cls: OpRule("copies border values: " + MOVES)
        for cls in (nn.ReflectionPad1d, nn.ReflectionPad2d, nn.ReplicationPad1d, nn.ReplicationPad2d)
    },
}
MAXPOOL_MODULES: tuple[type[nn.Module], ...] = (
    nn.MaxPool1d,
    nn.MaxPool2d,
    nn.MaxPool3d,
    nn.AdaptiveMaxPool1d,
    nn.AdaptiveMaxPool2d,
)
MAXPOOL_FUNCTIONS: set[Any] = {
    F.max_pool1d,
    F.max_pool2d,
    F.max_pool3d,
    F.adaptive_max_pool1d,
    F.adaptive_max_pool2d,
}
BN_FUNCTIONS: set[Any] = {F.batch_norm}
_POOL_WHY = "a mean over windows of each sample: " + AFFINE

SUPPORTED_FUNCTIONS: dict[Any, OpRule] = {
    operator.add: OpRule("a sum of signals (or a signal and a constant): " + AFFINE, bd.check_arith),
    operator.iadd: OpRule("a sum of signals: " + AFFINE, bd.check_arith),
    operator.sub: OpRule("a difference of signals: " + AFFINE, bd.check_arith),
    operator.isub: OpRule("a difference of signals: " + AFFINE, bd.check_arith),
    operator.neg: OpRule(AFFINE),
    torch.add: OpRule("a sum of signals: " + AFFINE, bd.check_arith),
    torch.sub: OpRule("a difference of signals: " + AFFINE, bd.check_arith),
    operator.mul: OpRule("scaling by a constant: " + AFFINE, bd.check_scale),
    operator.imul: OpRule("scaling by a constant: " + AFFINE, bd.check_scale),
    operator.truediv: OpRule("scaling by a constant: " + AFFINE, bd.check_scale),
    torch.mul: OpRule("scaling by a constant: " + AFFINE, bd.check_scale),
    torch.div: OpRule("scaling by a constant: " + AFFINE, bd.check_scale),
    **{fn: OpRule("integer shape arithmetic: " + NO_DATA, bd.check_int_math) for fn in bd.INT_FUNCTIONS},
    **{fn: OpRule("a comparison of shapes: " + NO_DATA, bd.check_int_math) for fn in bd.COMPARE_FUNCTIONS},
    torch._assert: OpRule("an assert on shapes: " + NO_DATA, bd.check_assert),
    operator.getitem: OpRule("indexing: " + MOVES, bd.check_getitem),
    getattr: OpRule("reads a tensor's shape, ndim, dtype or device: " + NO_DATA, bd.check_getattr),
    torch.flatten: OpRule(MOVES),
    torch.reshape: OpRule(MOVES, bd.check_view),
    torch.cat: OpRule("concatenation: " + MOVES, bd.check_dim_not_batch("dim", 1, 0)),
    torch.concat: OpRule("concatenation: " + MOVES, bd.check_dim_not_batch("dim", 1, 0)),
    torch.stack: OpRule("stacking: " + MOVES, bd.check_dim_not_batch("dim", 1, 0)),
    torch.chunk: OpRule("splitting: " + MOVES, bd.check_dim_not_batch("dim", 2, 0)),
    torch.split: OpRule("splitting: " + MOVES, bd.check_dim_not_batch("dim", 2, 0)),
    torch.permute: OpRule("a permutation of dims: " + MOVES, bd.check_permute),
    torch.transpose: OpRule("a permutation of dims: " + MOVES, bd.check_transpose),
    torch.swapaxes: OpRule("a permutation of dims: " + MOVES, bd.check_transpose),
    torch.squeeze: OpRule(MOVES, bd.check_dim_not_batch("dim", 1, None)),
    torch.unsqueeze: OpRule(MOVES, bd.check_dim_not_batch("dim", 1, None)),
    F.pad: OpRule("zero padding adds silent trains, reflect/replicate copy values: " + MOVES, bd.check_pad),
    F.avg_pool1d: OpRule(_POOL_WHY),
    F.avg_pool2d: OpRule(_POOL_WHY),
    F.avg_pool3d: OpRule(_POOL_WHY),
    F.adaptive_avg_pool1d: OpRule(_POOL_WHY),
    F.adaptive_avg_pool2d: OpRule(_POOL_WHY),
    F.adaptive_avg_pool3d: OpRule(_POOL_WHY),
    **{fn: OpRule(MAXPOOL) for fn in MAXPOOL_FUNCTIONS},
    F.dropout: OpRule(IDENTITY_EVAL, bd.check_eval_flag("training", 2)),
    F.dropout1d: OpRule(IDENTITY_EVAL, bd.check_eval_flag("training", 2)),
    F.dropout2d: OpRule(IDENTITY_EVAL, bd.check_eval_flag("training", 2)),
    F.dropout3d: OpRule(IDENTITY_EVAL, bd.check_eval_flag("training", 2)),
    F.linear: OpRule(_CONV_LINEAR, bd.check_weights_constant),
    F.conv1d: OpRule(_CONV_LINEAR, bd.check_weights_constant),
    F.conv2d: OpRule(_CONV_LINEAR, bd.check_weights_constant),
    F.conv3d: OpRule(_CONV_LINEAR, bd.check_weights_constant),
    F.batch_norm: OpRule("affine per channel in eval (running statistics)", bd.check_batch_norm),
}
# Functions of other libraries, matched by their qualified name so that ann2snn needs no import of them.
SUPPORTED_QUALNAMES: dict[str, OpRule] = {
    "torchvision.ops.stochastic_depth.stochastic_depth": OpRule(IDENTITY_EVAL, bd.check_eval_flag("training", 3)),
}

SUPPORTED_METHODS: dict[str, OpRule] = {
    "view": OpRule(MOVES, bd.check_view),
    "reshape": OpRule(MOVES, bd.check_view),
    "view_as": OpRule(MOVES),
    "reshape_as": OpRule(MOVES),
    "flatten": OpRule(MOVES),
    "contiguous": OpRule(MOVES),
    "clone": OpRule(MOVES),
    "permute": OpRule("a permutation of dims: " + MOVES, bd.check_permute),
    "transpose": OpRule("a permutation of dims: " + MOVES, bd.check_transpose),
    "swapaxes": OpRule("a permutation of dims: " + MOVES, bd.check_transpose),
    "chunk": OpRule("splitting: " + MOVES, bd.check_dim_not_batch("dim", 2, 0)),
    "split": OpRule("splitting: " + MOVES, bd.check_dim_not_batch("dim", 2, 0)),
    "unsqueeze": OpRule(MOVES, bd.check_dim_not_batch("dim", 1, None)),
    "squeeze": OpRule(MOVES, bd.check_dim_not_batch("dim", 1, None)),
    "expand": OpRule("repeats values of each sample: " + MOVES, bd.check_view),
    "size": OpRule("reads a shape: " + NO_DATA),
    "dim": OpRule("reads a shape: " + NO_DATA),
    "add": OpRule("a sum of signals: " + AFFINE, bd.check_arith),
    "add_": OpRule("a sum of signals: " + AFFINE, bd.check_arith),
    "sub": OpRule("a difference of signals: " + AFFINE, bd.check_arith),
    "sub_": OpRule("a difference of signals: " + AFFINE, bd.check_arith),
    "mul": OpRule("scaling by a constant: " + AFFINE, bd.check_scale),
    "mul_": OpRule("scaling by a constant: " + AFFINE, bd.check_scale),
    "div": OpRule("scaling by a constant: " + AFFINE, bd.check_scale),
    "div_": OpRule("scaling by a constant: " + AFFINE, bd.check_scale),
    "mean": OpRule("a mean over dims of each sample: " + AFFINE, bd.check_reduce),
    "sum": OpRule("a sum over dims of each sample: " + AFFINE, bd.check_reduce),
}


def register_layer(cls: type[nn.Module], why: str = "declared exact with register_layer") -> type[nn.Module]:
    """Declare a module class that converts unchanged; ``why`` says why it is exact on spikes.

    The module must act on every sample (row of dim 0) and every time step on its own and be affine, move
    values, or commute with sorted spike trains like max-pool. Usable as a decorator. Returns ``cls``.
    """
    if not (isinstance(cls, type) and issubclass(cls, nn.Module)):
        raise ConfigError(f"register_layer expects an nn.Module subclass, got {cls!r}")
    SUPPORTED_MODULES[cls] = OpRule(_why(why))
    return cls


def register_function(fn: Callable[..., Any], why: str = "declared exact with register_function") -> Callable[..., Any]:
    """Declare a function (as torch.fx records it) that converts unchanged; ``why`` says why it is exact.

    Same contract as :func:`register_layer`. Usable as a decorator; returns ``fn``.
    """
    if not callable(fn):
        raise ConfigError(f"register_function expects a function, got {fn!r}")
    SUPPORTED_FUNCTIONS[fn] = OpRule(_why(why))
    return fn


def register_method(name: str, *, why: str = "declared exact with register_method") -> str:
    """Declare a ``Tensor`` method (``x.name(...)``) that converts unchanged; ``why`` says why it is exact.

    Same contract as :func:`register_layer`. Returns ``name``.
    """
    if not isinstance(name, str) or not name.isidentifier():
        raise ConfigError(f"register_method expects a Tensor method name such as 'roll', got {name!r}")
    SUPPORTED_METHODS[name] = OpRule(_why(why))
    return name


def _why(why: Any) -> str:
    if not isinstance(why, str) or not why.strip():
        raise ConfigError("why= must say in a few words why the op is exact on spikes")
    return why.strip()


def qualname(fn: Any) -> str:
    return f"{getattr(fn, '__module__', '')}.{getattr(fn, '__qualname__', getattr(fn, '__name__', fn))}"


def op_rule(node: fx.Node, modules: dict[str, nn.Module]) -> OpRule | None:
    """The table entry of ``node``, or ``None`` when the op is not in the table."""
    if node.op == "call_module":
        mod = modules[str(node.target)]
        if isinstance(mod, SpikingNeuron):
            return OpRule("a spiking neuron")
        return SUPPORTED_MODULES.get(type(mod))
    if node.op == "call_function":
        rule = SUPPORTED_FUNCTIONS.get(node.target)
        if rule is None and isinstance(node.target, type) and issubclass(node.target, tuple):
            return OpRule("builds the output tuple: " + NO_DATA)
        return rule if rule is not None else SUPPORTED_QUALNAMES.get(qualname(node.target))
    if node.op == "call_method":
        return SUPPORTED_METHODS.get(str(node.target))
    return OpRule(NO_DATA)  # placeholder, output, get_attr


def is_maxpool(node: fx.Node, modules: dict[str, nn.Module]) -> bool:
    if node.op == "call_module":
        return isinstance(modules[str(node.target)], MAXPOOL_MODULES)
    return node.op == "call_function" and node.target in MAXPOOL_FUNCTIONS


def is_batchnorm(node: fx.Node, modules: dict[str, nn.Module]) -> bool:
    if node.op == "call_module":
        return isinstance(modules[str(node.target)], nn.modules.batchnorm._BatchNorm)
    return node.op == "call_function" and node.target in BN_FUNCTIONS


def describe(node: fx.Node, modules: dict[str, nn.Module]) -> str:
    """``module 'features.3' (GELU)`` style text naming a node for error messages."""
    if node.op == "call_module":
        return f"module '{node.target}' ({type(modules[str(node.target)]).__name__})"
    if node.op == "call_function":
        return f"node '{node.name}' (function {getattr(node.target, '__name__', node.target)})"
    return f"node '{node.name}' (method .{node.target}())"


def kind(node: fx.Node, modules: dict[str, nn.Module]) -> str:
    """The op kind of a node for grouped messages: ``GELU``, ``F.gelu``, ``.softmax()``."""
    if node.op == "call_module":
        return type(modules[str(node.target)]).__name__
    if node.op == "call_function":
        return f"{getattr(node.target, '__name__', node.target)}()"
    return f".{node.target}()"


def where(node: fx.Node) -> str:
    """The node's name as users know it: the module path for modules, the fx node name otherwise."""
    return str(node.target) if node.op == "call_module" else node.name
