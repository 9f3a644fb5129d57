"""Per-use checks of the op-support table: does this use of an op act on each row of dim 0 on its own?

Parallel spike mode runs the graph once on ``[T·B, ...]``, time-major, and every neuron splits dim 0 back into
``[T, B]``. An op is exact there iff it commutes with concatenating time steps along dim 0. Permutations,
views, concatenation and reductions over the other dims do; a use that acts along dim 0 (``cat(dim=0)``,
``x.mean()``, ``x[0]``, ``permute(1, 0, ...)``), hard-codes the batch size in a ``view``, or computes with
``x.size(0)`` (which is T·B there) does not. Each ``check_*`` returns ``None`` for an exact use, else why not.

Values are classified by :func:`value_kind`: ``tensor`` (a signal), ``const`` (parameters, buffers),
``int`` (a per-sample size or a literal), ``batch`` (the batch size, times or divided by ints), ``shape`` (a size
tuple whose entry 0 is the batch size), ``seq`` (a tuple of tensors, e.g. from ``chunk``) or ``other``.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from typing import Any

import torch
from torch import fx, nn
from torch.fx.passes.shape_prop import TensorMetadata

INT_FUNCTIONS: set[Any] = {operator.floordiv, operator.mod}
COMPARE_FUNCTIONS: set[Any] = {operator.eq, operator.ne, operator.lt, operator.le, operator.gt, operator.ge}
_ARITH: set[Any] = {operator.add, operator.sub, operator.mul, operator.truediv, *INT_FUNCTIONS}
_SEQ_FUNCTIONS: set[Any] = {torch.chunk, torch.split, torch.unbind, torch.tensor_split}
_SEQ_METHODS = {"chunk", "split", "unbind", "tensor_split"}
_META_ATTRS = {"shape": "shape", "ndim": "int", "dtype": "other", "device": "other", "is_cuda": "other"}
BATCH = "acts along dim 0, the batch (T·B rows, time-major, in parallel spike mode)"
BATCH_VALUE = "uses the batch size x.size(0) as a value (it is T·B in parallel spike mode)"


def _arg(node: fx.Node, pos: int, name: str, default: Any = None) -> Any:
    return node.args[pos] if len(node.args) > pos else node.kwargs.get(name, default)


def _rank(value: Any) -> int | None:
    meta = value.meta.get("tensor_meta") if isinstance(value, fx.Node) else None
    shape = getattr(meta, "shape", None)
    return len(shape) if shape is not None else None


def _is_batch_dim(dim: Any, rank: int | None) -> bool:
    """Whether dim index ``dim`` (an int; negative counts from the end) is dim 0 of a tensor of ``rank`` dims."""
    if not isinstance(dim, int):
        return False
    return dim == 0 or (rank is not None and dim < 0 and dim + rank == 0)


def value_kind(value: Any) -> str:
    """What a graph value is (see the module docstring); cached in ``node.meta``."""
    if not isinstance(value, fx.Node):
        if isinstance(value, (list, tuple)):
            kinds = {value_kind(v) for v in value}
            return "tensor" if "tensor" in kinds else "int"
        return "int" if isinstance(value, (int, float, bool)) or value is None else "other"
    if "a2s_kind" not in value.meta:
        value.meta["a2s_kind"] = _kind(value)
    return str(value.meta["a2s_kind"])


def _kind(node: fx.Node) -> str:
    if node.op == "placeholder":
        return "tensor"
    if node.op == "get_attr":
        return "const"
    if node.op == "call_method" and node.target == "size":
        dim = _arg(node, 1, "dim")
        if dim is None:
            return "shape"
        return "batch" if _is_batch_dim(dim, _rank(node.args[0])) else "int"
    if node.op == "call_method" and node.target == "dim":
        return "int"
    if node.op == "call_function" and node.target is getattr:
        return _META_ATTRS.get(str(node.args[1]), "tensor")
    if node.op == "call_function" and node.target is operator.getitem:
        src, idx = value_kind(node.args[0]), node.args[1]
        if src == "shape":
            if isinstance(idx, int):
                return "batch" if idx == 0 else "int"
            return "shape" if isinstance(idx, slice) and idx.start in (None, 0) else "int"
        return "tensor" if src == "seq" else src
    if (node.op == "call_function" and node.target in _SEQ_FUNCTIONS) or (
        node.op == "call_method" and node.target in _SEQ_METHODS
    ):
        return "seq"
    if _returns_tuple(node):
        return "seq"
    inputs = [value_kind(a) for a in node.all_input_nodes]
    if node.op == "call_function" and node.target in _ARITH | COMPARE_FUNCTIONS and "tensor" not in inputs:
        if "batch" not in inputs:
            return "const" if "const" in inputs else "int"
        scaled = node.target in (operator.mul, operator.floordiv) and inputs.count("batch") == 1
        return "batch" if scaled else "other"
    if inputs and all(k in ("const", "int", "other") for k in inputs):
        return "const"
    return "tensor"


def _returns_tuple(node: Any) -> bool:
    """Whether a node's value is a tuple: from ShapeProp's meta, else a call of a module outside the op table."""
    if not isinstance(node, fx.Node):
        return False
    if "tensor_meta" in node.meta:
        return not isinstance(node.meta["tensor_meta"], TensorMetadata)
    if node.op != "call_module":
        return False
    from ann2snn.transforms.registry import SUPPORTED_MODULES

    root = node.graph.owning_module
    module = root.get_submodule(str(node.target)) if root is not None else None
    return module is not None and type(module) not in SUPPORTED_MODULES and not hasattr(module, "threshold")


def _kinds(node: fx.Node) -> list[str]:
    return [value_kind(a) for a in node.args] + [value_kind(v) for v in node.kwargs.values()]


def _batch_misuse(node: fx.Node) -> str | None:
    return BATCH_VALUE if "batch" in _kinds(node) else None


def check_arith(node: fx.Node, module: nn.Module | None = None) -> str | None:
    """``a + b``, ``a - b``: signals and constants add exactly; the batch size may not be added to anything."""
    if value_kind(node) == "batch":
        return None
    return _batch_misuse(node)


def check_scale(node: fx.Node, module: nn.Module | None = None) -> str | None:
    """``a * b``, ``a / b``: exact when at most one factor is a signal (and it is not a divisor)."""
    kinds = _kinds(node)[:2]
    if value_kind(node) == "batch":
        return None
    if "batch" in kinds:
        return BATCH_VALUE
    if kinds.count("tensor") >= 2:
        return "multiplies two signals (e.g. gating x * sigmoid(...)): spike trains carry sums, not products"
    divides = node.target in (operator.truediv, torch.div) or node.target in ("div", "div_")
    if divides and len(kinds) > 1 and kinds[1] == "tensor":
        return "divides by a signal"
    return None


def check_int_math(node: fx.Node, module: nn.Module | None = None) -> str | None:
    """Integer shape arithmetic and comparisons: exact on sizes; on tensor values they are data-dependent."""
    kinds = _kinds(node)
    if "tensor" in kinds:
        return "computes on signal values (only integer shape arithmetic is exact)"
    return None if value_kind(node) in ("int", "batch", "const") else BATCH_VALUE


def check_assert(node: fx.Node, module: nn.Module | None = None) -> str | None:
    return "asserts on signal values" if value_kind(node.args[0]) == "tensor" else None


def check_getattr(node: fx.Node, module: nn.Module | None = None) -> str | None:
    name = str(node.args[1])
    return None if name in _META_ATTRS else f"reads the attribute .{name} (only shape, ndim, dtype, device)"


def check_getitem(node: fx.Node, module: nn.Module | None = None) -> str | None:
    """Indexing a tensor must leave dim 0 whole: ``x[:, 3]``, ``x[..., 1:]``; items of tuples are fine."""
    if value_kind(node.args[0]) != "tensor":
        return None
    idx = node.args[1]
    first = idx[0] if isinstance(idx, tuple) and idx else idx
    if first is Ellipsis or (isinstance(first, slice) and first == slice(None)):
        return None
    return "indexes dim 0, the batch (T·B rows, time-major, in parallel spike mode)"


def _shape_entries(node: fx.Node) -> list[Any]:
    kwargs: Any = node.kwargs
    rest = list(node.args[1:]) if len(node.args) > 1 else list(kwargs.get("shape", kwargs.get("size", ())))
    if len(rest) == 1 and (isinstance(rest[0], (list, tuple)) or value_kind(rest[0]) == "shape"):
        return list(rest[0]) if isinstance(rest[0], (list, tuple)) else [rest[0]]
    return rest


def check_view(node: fx.Node, module: nn.Module | None = None) -> str | None:
    """``view``/``reshape``/``expand``: dim 0 must be ``-1`` or the batch size ``x.size(0)`` (times ints)."""
    entries = _shape_entries(node)
    if not entries:
        return None
    if len(entries) == 1 and (entries[0] == -1 or value_kind(entries[0]) == "shape"):
        return None
    first, rest = entries[0], entries[1:]
    if any(isinstance(e, fx.Node) and value_kind(e) in ("batch", "shape") for e in rest):
        return "moves the batch size x.size(0) off dim 0"
    if first == -1 or (isinstance(first, fx.Node) and value_kind(first) == "batch"):
        return None
    if isinstance(first, int):
        return f"hard-codes dim 0 (the batch) as {first}; use -1 or x.size(0), since dim 0 holds T·B rows"
    return "sets dim 0 (the batch) to a per-sample size; use -1 or x.size(0)"


def check_dim_not_batch(name: str, pos: int, default: Any) -> Callable[[fx.Node, nn.Module | None], str | None]:
    """A check that the op's dim argument (``name`` or position ``pos``, default ``default``) is not dim 0."""

    def check(node: fx.Node, module: nn.Module | None = None) -> str | None:
        dim = _arg(node, pos, name, default)
        src = node.args[0]
        if node.target in ("cat", "concat", "stack") or node.target in (torch.cat, torch.concat, torch.stack):
            src = src[0] if isinstance(src, (list, tuple)) and src else src
        dims = dim if isinstance(dim, (list, tuple)) else (dim,)
        return BATCH if any(_is_batch_dim(d, _rank(src)) for d in dims) else None

    return check


def check_permute(node: fx.Node, module: nn.Module | None = None) -> str | None:
    kwargs: Any = node.kwargs
    dims = list(node.args[1:]) if len(node.args) > 1 else list(kwargs.get("dims", ()))
    if len(dims) == 1 and isinstance(dims[0], (list, tuple)):
        dims = list(dims[0])
    if dims and not _is_batch_dim(dims[0], len(dims)):
        return "moves dim 0 (the batch; T·B rows in parallel spike mode) to another position"
    return None


def check_transpose(node: fx.Node, module: nn.Module | None = None) -> str | None:
    dims = (_arg(node, 1, "dim0"), _arg(node, 2, "dim1"))
    rank = _rank(node.args[0])
    return "swaps dim 0 (the batch) with another dim" if any(_is_batch_dim(d, rank) for d in dims) else None


def check_reduce(node: fx.Node, module: nn.Module | None = None) -> str | None:
    dim = _arg(node, 1, "dim")
    if dim is None:
        return "reduces over every dim, the batch included; give dim= (e.g. x.mean((2, 3)))"
    dims = dim if isinstance(dim, (list, tuple)) else (dim,)
    return BATCH if any(_is_batch_dim(d, _rank(node.args[0])) for d in dims) else None


def check_pad(node: fx.Node, module: nn.Module | None = None) -> str | None:
    pad = _arg(node, 1, "pad", ())
    rank = _rank(node.args[0])
    if rank is not None and isinstance(pad, (list, tuple)) and len(pad) > 2 * (rank - 1):
        return BATCH
    return None


def check_eval_flag(name: str, pos: int) -> Callable[[fx.Node, nn.Module | None], str | None]:
    """A check that the op's ``training`` flag was traced as False (the op is then the identity)."""

    def check(node: fx.Node, module: nn.Module | None = None) -> str | None:
        flag = _arg(node, pos, name, True if name == "training" else None)
        return None if flag is False else f"was traced with {name}={flag!r}; convert the model in eval mode"

    return check


def check_weights_constant(node: fx.Node, module: nn.Module | None = None) -> str | None:
    kinds = [value_kind(a) for a in node.args[1:3]]
    return "multiplies two signals (its weights are computed from the input)" if "tensor" in kinds else None


def check_batch_norm(node: fx.Node, module: nn.Module | None = None) -> str | None:
    training = _arg(node, 5, "training", False)
    if training is not False or _arg(node, 1, "running_mean") is None:
        return "normalises with batch statistics (training=True or no running statistics), not per sample"
    return None


def check_bn_module(node: fx.Node, module: nn.Module | None = None) -> str | None:
    if module is not None and getattr(module, "running_mean", None) is None:
        return "has no running statistics (track_running_stats=False): it normalises with batch statistics"
    return None


def check_unflatten_module(node: fx.Node, module: nn.Module | None = None) -> str | None:
    return BATCH if module is not None and _is_batch_dim(getattr(module, "dim", 1), None) else None
