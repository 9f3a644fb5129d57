"""Is a max-pool exact on spikes? It is when every window holds sorted spike trains of one amplitude.

Parallel neurons emit sorted (thermometer-coded) trains of amplitude θ + φ per channel; the max over a window of
such trains is the train of the largest level (tests/unit/test_maxpool_commutes.py). So a max-pool is exact when
its input is neuron outputs moved around by value-preserving ops (cat, chunk, split, indexing, permutations,
views, flatten, zero padding, other max-pools) and no window spans values of different amplitudes.

:func:`amplitude_dims` tracks, for each tensor made of spike trains, the set of dims along which the amplitude may
vary (``{1}``, the channel dim, for a neuron's output); a window must not cover any of them. ``view``/``reshape``
need the shapes torch.fx's ``ShapeProp`` stores in ``node.meta``; without them the analysis stays conservative.
"""

from __future__ import annotations

import math
import operator
from typing import Any

import torch
import torch.nn.functional as F
from torch import fx, nn

from ann2snn.layers.neurons import SpikingNeuron
from ann2snn.transforms.registry import MAXPOOL_FUNCTIONS, describe, is_maxpool, qualname

_PASS_MODULES = (nn.Identity, nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d, nn.ZeroPad1d, nn.ZeroPad2d)
_PASS_METHODS = {"contiguous", "clone"}
_VIEW_METHODS = {"view", "reshape"}
_WINDOW_DIMS: dict[Any, int] = {
    F.max_pool1d: 1,
    F.adaptive_max_pool1d: 1,
    F.max_pool2d: 2,
    F.adaptive_max_pool2d: 2,
    F.max_pool3d: 3,
}
Dims = frozenset[int] | None


def _shape(node: Any) -> tuple[int, ...] | None:
    meta = node.meta.get("tensor_meta") if isinstance(node, fx.Node) else None
    shape = getattr(meta, "shape", None)
    return tuple(int(s) for s in shape) if shape is not None else None


def _norm(dim: Any, rank: int | None) -> int | None:
    if not isinstance(dim, int):
        return None
    if dim >= 0:
        return dim
    return dim + rank if rank is not None else None


def _reshape_dims(dims: frozenset[int], before: tuple[int, ...], after: tuple[int, ...]) -> Dims:
    """Map amplitude dims through a reshape: each group of dims with equal products maps as a whole."""
    i = j = 0
    out: set[int] = set()
    while i < len(before) or j < len(after):
        gi, gj = [i], [j]
        pi = before[i] if i < len(before) else 1
        pj = after[j] if j < len(after) else 1
        i, j = i + 1, j + 1
        while pi != pj:
            if pi < pj and i < len(before):
                pi *= before[i]
                gi.append(i)
                i += 1
            elif j < len(after):
                pj *= after[j]
                gj.append(j)
                j += 1
            else:
                return None
        if any(d in dims and d < len(before) and before[d] > 1 for d in gi):
            out.update(d for d in gj if d < len(after) and after[d] > 1)
    return frozenset(out)


def amplitude_dims(node: Any, modules: dict[str, nn.Module], memo: dict[fx.Node, Dims] | None = None) -> Dims:
    """Dims along which the spike amplitude of ``node``'s value may vary; ``None`` when it is not spike trains."""
    memo = {} if memo is None else memo
    if not isinstance(node, fx.Node):
        return None
    if node not in memo:
        memo[node] = None  # guards cycles (there are none in an fx graph)
        memo[node] = _dims(node, modules, memo)
    return memo[node]


def _dims(node: fx.Node, modules: dict[str, nn.Module], memo: dict[fx.Node, Dims]) -> Dims:
    args: Any = node.args
    kwargs: Any = node.kwargs

    def src(i: int = 0) -> Dims:
        return amplitude_dims(args[i] if len(args) > i else None, modules, memo)

    rank = len(_shape(args[0]) or ()) or None if args else None
    op, target = node.op, node.target
    if op == "call_module":
        mod = modules[str(target)]
        if isinstance(mod, SpikingNeuron):
            return frozenset({1})
        if isinstance(mod, _PASS_MODULES) or is_maxpool(node, modules):
            return src()
        if isinstance(mod, nn.ConstantPad2d) and mod.value == 0:
            return src()
        if isinstance(mod, nn.Flatten):
            return _flatten(src(), mod.start_dim, mod.end_dim, rank)
        return None
    if op == "call_method" and target in _PASS_METHODS:
        return src()
    if op == "call_function" and (
        target in MAXPOOL_FUNCTIONS
        or target in (F.dropout, F.dropout2d)
        or qualname(target).endswith("stochastic_depth")
    ):
        return src()
    if op == "call_function" and target is F.pad:
        value = kwargs.get("value", args[3] if len(args) > 3 else None)
        mode = kwargs.get("mode", args[2] if len(args) > 2 else "constant")
        return src() if mode != "constant" or not value else None
    if target in (torch.flatten, "flatten"):
        start = args[1] if len(args) > 1 else kwargs.get("start_dim", 0)
        end = args[2] if len(args) > 2 else kwargs.get("end_dim", -1)
        return _flatten(src(), start, end, rank)
    if target in (torch.cat, torch.concat):
        parts = [amplitude_dims(a, modules, memo) for a in args[0]]
        dim = _norm(args[1] if len(args) > 1 else kwargs.get("dim", 0), rank_of(args[0][0]))
        if dim is None or any(p is None for p in parts):
            return None
        union = frozenset().union(*[p for p in parts if p is not None])
        return union if len({a for a in args[0]}) == 1 else union | {dim}
    if target in (torch.chunk, torch.split, "chunk", "split") or target is operator.getitem:
        if target is operator.getitem and not _keeps_dims(node):
            return None
        return src()
    if target in (torch.permute, "permute"):
        order = list(args[1:]) if len(args) > 1 else list(kwargs.get("dims", ()))
        if len(order) == 1 and isinstance(order[0], (list, tuple)):
            order = list(order[0])
        normal = [_norm(d, len(order)) for d in order]
        dims = src()
        return None if dims is None or None in normal else frozenset(normal.index(d) for d in dims)
    if target in (torch.transpose, "transpose", torch.swapaxes, "swapaxes"):
        a, b = _norm(args[1], rank), _norm(args[2], rank)
        dims = src()
        if dims is None or a is None or b is None:
            return None
        return frozenset(b if d == a else a if d == b else d for d in dims)
    if target in (torch.reshape, *_VIEW_METHODS):
        before, after, dims = _shape(args[0]), _shape(node), src()
        return None if dims is None or before is None or after is None else _reshape_dims(dims, before, after)
    return None


def rank_of(node: Any) -> int | None:
    shape = _shape(node)
    return len(shape) if shape is not None else None


def _keeps_dims(node: fx.Node) -> bool:
    """getitem of a tuple (chunk/split output), or a tensor index made of full-or-partial slices only."""
    src = node.args[0]
    if isinstance(src, fx.Node) and (src.target in (torch.chunk, torch.split, "chunk", "split")):
        return True
    idx = node.args[1]
    items = idx if isinstance(idx, tuple) else (idx,)
    return all(isinstance(i, slice) for i in items)


def _flatten(dims: Dims, start: Any, end: Any, rank: int | None) -> Dims:
    start, stop = _norm(start, rank), _norm(end, rank)
    if dims is None or start is None:
        return None
    if stop is None:
        if end != -1:
            return None
        stop = math.inf  # type: ignore[assignment]
    assert stop is not None
    merged = {d for d in dims if start <= d <= stop}
    kept = {d for d in dims if d < start} | {int(d - (stop - start)) for d in dims if d > stop}
    return frozenset(kept | ({start} if merged else set()))


def window_dims(node: fx.Node, modules: dict[str, nn.Module]) -> int:
    """How many trailing dims a max-pool's window spans (1, 2 or 3)."""
    if node.op == "call_module":
        name = type(modules[str(node.target)]).__name__
        return int(name[-2]) if name[-2].isdigit() else 2
    table: dict[Any, int] = _WINDOW_DIMS
    return table.get(node.target, 2)


def is_exact(node: fx.Node, modules: dict[str, nn.Module]) -> bool:
    """Whether the max-pool ``node`` is exact on parallel spikes (its windows hold trains of one amplitude)."""
    dims = amplitude_dims(node.args[0], modules)
    k = window_dims(node, modules)
    rank = rank_of(node.args[0]) or k + 2
    return dims is not None and not dims & set(range(rank - k, rank))


def maxpool_note(node: fx.Node, modules: dict[str, nn.Module], execution: str) -> str:
    """The conversion note of one max-pool: exact, or why not."""
    what = f"max-pool {describe(node, modules)} kept"
    if execution != "parallel":
        return f"{what}: on serial spikes it over-estimates the max rate (not exact)"
    if is_exact(node, modules):
        return f"{what}: exact (its windows hold sorted spike trains of one amplitude: the max is the train of the max)"
    if amplitude_dims(node.args[0], modules) is not None:
        return (
            f"{what}: NOT exact, its windows mix spike trains of different amplitudes (concatenated or reshaped "
            "along a pooled dim)"
        )
    return (
        f"{what}: NOT exact, its input is not (a permutation of) neuron spike trains (the max of time-averages "
        "differs from the time-average of maxima); move it directly after an activation for a lossless conversion"
    )
