"""torch.fx tracing with ann2snn's leaf modules and readable errors."""

from __future__ import annotations

from torch import fx, nn

from ann2snn.errors import UnsupportedModelError
from ann2snn.layers.neurons import SpikingNeuron
from ann2snn.transforms.registry import ACTIVATION_MODULES

_LEAVES: list[type[nn.Module]] = [*ACTIVATION_MODULES, SpikingNeuron]


def register_leaf(cls: type[nn.Module]) -> type[nn.Module]:
    """Trace ``cls`` as one opaque module (use for blocks with data-dependent control flow)."""
    _LEAVES.append(cls)
    return cls


class _Tracer(fx.Tracer):
    def is_leaf_module(self, m: nn.Module, module_qualified_name: str) -> bool:
        return isinstance(m, tuple(_LEAVES)) or super().is_leaf_module(m, module_qualified_name)


def trace(model: nn.Module) -> fx.GraphModule:
    """Symbolically trace ``model``; a tracing failure is an UnsupportedModelError saying what to do."""
    if not isinstance(model, nn.Module):
        raise UnsupportedModelError(f"expected a torch.nn.Module, got {type(model).__name__}")
    try:
        graph = _Tracer().trace(model)
    except Exception as exc:  # fx raises many types; all mean "not traceable"
        raise UnsupportedModelError(
            f"torch.fx could not trace {type(model).__name__}: {type(exc).__name__}: {exc}. ann2snn needs a "
            "model without data-dependent control flow; wrap such a block in a module and declare it with "
            "ann2snn.transforms.register_leaf (it must then be free of activations)"
        ) from exc
    return fx.GraphModule(model, graph, class_name=type(model).__name__)


def set_submodule(root: nn.Module, target: str, module: nn.Module) -> None:
    """Replace (or add) the submodule at dotted path ``target``."""
    parent_name, _, name = target.rpartition(".")
    parent = root.get_submodule(parent_name) if parent_name else root
    setattr(parent, name, module)
