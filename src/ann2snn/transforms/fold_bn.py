"""Fold BatchNorm layers into the conv/linear layer before them."""

from __future__ import annotations

import copy

import torch
from torch import fx, nn

from ann2snn.errors import UnsupportedModelError
from ann2snn.functional.fold import fold_bn_into_weights
from ann2snn.transforms.trace import set_submodule, trace

_FOLDABLE = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)
_BN = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)


def fold_bn_graph(gm: fx.GraphModule) -> list[str]:
    """Fold, in place, every BN whose input is a conv/linear used only there; returns the folded BN names.

    BN layers that follow anything else stay (they are affine in eval mode, so they still convert exactly).
    """
    modules = dict(gm.named_modules())
    calls: dict[str, int] = {}
    for node in gm.graph.nodes:
        if node.op == "call_module":
            calls[str(node.target)] = calls.get(str(node.target), 0) + 1
    folded = []
    for node in list(gm.graph.nodes):
        if node.op != "call_module" or not isinstance(modules[str(node.target)], _BN):
            continue
        src = node.args[0]
        if not (
            isinstance(src, fx.Node)
            and src.op == "call_module"
            and len(src.users) == 1
            and isinstance(modules[str(src.target)], _FOLDABLE)
            and calls[str(src.target)] == 1
        ):
            continue
        bn = modules[str(node.target)]
        layer = modules[str(src.target)]
        if bn.running_mean is None or bn.running_var is None:
            raise UnsupportedModelError(
                f"BatchNorm '{node.target}' has no running statistics (track_running_stats=False); "
                "it cannot be folded or converted"
            )
        with torch.no_grad():
            w, b = fold_bn_into_weights(
                layer.weight, layer.bias, bn.running_mean, bn.running_var, bn.weight, bn.bias, bn.eps
            )
        new = copy.deepcopy(layer)
        new.weight = nn.Parameter(w.detach().clone())
        new.bias = nn.Parameter(b.detach().clone().to(w.dtype))
        set_submodule(gm, str(src.target), new)
        node.replace_all_uses_with(src)
        gm.graph.erase_node(node)
        folded.append(str(node.target))
    gm.graph.lint()
    gm.delete_all_unused_submodules()
    gm.recompile()
    return folded


def fold_batchnorm(model: nn.Module) -> fx.GraphModule:
    """A new eval-mode GraphModule equal to ``model`` in eval mode, with conv/linear → BN pairs folded."""
    gm = trace(copy.deepcopy(model).eval())
    fold_bn_graph(gm)
    return gm
