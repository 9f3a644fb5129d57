"""Activation sites: find them, and give each its own module so it can be swapped for a neuron."""

from __future__ import annotations

import copy

from torch import fx, nn

from ann2snn.transforms.analysis import analyze, refuse
from ann2snn.transforms.registry import clamp_bound, is_activation_site, is_inplace


def check_activations(gm: fx.GraphModule, what: str) -> None:
    """Raise one grouped error naming every node that cannot run on spikes (see :func:`analyze`)."""
    refuse(analyze(gm), what, gm.__class__.__name__)


def site_module(node: fx.Node, modules: dict[str, nn.Module]) -> nn.Module:
    """A module computing a functional site: ``nn.ReLU``, or ``nn.Hardtanh(0, b)`` for ``clamp(x, 0, b)``."""
    bound = clamp_bound(node, modules)
    return nn.ReLU() if bound is None else nn.Hardtanh(0.0, bound)


def needs_graph(gm: fx.GraphModule) -> bool:
    """True when some site is functional or a module is called at more than one site."""
    modules = dict(gm.named_modules())
    targets: list[str] = []
    for node in gm.graph.nodes:
        if is_activation_site(node, modules):
            if node.op != "call_module":
                return True
            targets.append(str(node.target))
    return len(targets) != len(set(targets))


def site_targets(gm: fx.GraphModule) -> list[str]:
    """Module names of the activation sites, in graph order (after :func:`modularize_sites`)."""
    modules = dict(gm.named_modules())
    return [str(n.target) for n in gm.graph.nodes if n.op == "call_module" and is_activation_site(n, modules)]


def _unique_name(gm: fx.GraphModule, base: str) -> str:
    names = dict(gm.named_modules())
    k = 0
    while f"{base}_{k}" in names:
        k += 1
    return f"{base}_{k}"


def modularize_sites(gm: fx.GraphModule) -> list[str]:
    """Rewrite ``gm`` in place so every activation site is a call to its own module; returns their names.

    Functional ReLUs become ``nn.ReLU`` modules named ``relu_fn_<k>``, functional ``clamp(x, 0, b)`` (``F.relu6``,
    ``F.hardtanh``, ``torch.clamp``, ``Tensor.clip``) ``nn.Hardtanh(0, b)`` modules named ``clamp_fn_<k>``; a
    module used at several sites is copied for each extra site. In-place activations become out-of-place with
    later readers of the input rewired.
    """
    modules = dict(gm.named_modules())
    used: set[str] = set()
    order = {n: i for i, n in enumerate(gm.graph.nodes)}
    for node in list(gm.graph.nodes):
        if not is_activation_site(node, modules):
            continue
        inplace = is_inplace(node, modules)
        if node.op == "call_module" and str(node.target) not in used:
            used.add(str(node.target))
            if inplace and hasattr(modules[str(node.target)], "inplace"):
                modules[str(node.target)].inplace = False  # type: ignore[union-attr]
        else:
            if node.op == "call_module":
                name = _unique_name(gm, str(node.target).replace(".", "_"))
                gm.add_submodule(name, copy.deepcopy(modules[str(node.target)]))
            else:
                module = site_module(node, modules)
                name = _unique_name(gm, "relu_fn" if type(module) is nn.ReLU else "clamp_fn")
                gm.add_submodule(name, module)
            used.add(name)
            with gm.graph.inserting_before(node):
                new = gm.graph.call_module(name, (node.args[0],))
            node.replace_all_uses_with(new)
            gm.graph.erase_node(node)
            order[new] = order[node]
            node = new
        source = node.args[0]
        if inplace and isinstance(source, fx.Node):
            for user in list(source.users):
                if user is not node and order.get(user, -1) > order[node]:
                    user.replace_input_with(source, node)
    gm.graph.lint()
    gm.recompile()
    return site_targets(gm)
