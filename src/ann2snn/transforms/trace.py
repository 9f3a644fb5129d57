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
    def __init__(self, leaves: tuple[type[nn.Module], ...] = ()) -> None:
        super().__init__()
        self.leaves = (*_LEAVES, *leaves)

    def is_leaf_module(self, m: nn.Module, module_qualified_name: str) -> bool:
        return isinstance(m, self.leaves) or super().is_leaf_module(m, module_qualified_name)


def trace(model: nn.Module, leaves: tuple[type[nn.Module], ...] = ()) -> fx.GraphModule:
    """Symbolically trace ``model``; a tracing failure is an UnsupportedModelError naming the failing submodule.

    ``leaves`` are traced as opaque modules in this call only (in addition to :func:`register_leaf`'s).
    """
    if not isinstance(model, nn.Module):
        raise UnsupportedModelError(f"expected a torch.nn.Module, got {type(model).__name__}")
    try:
        graph = _Tracer(leaves).trace(model)
    except Exception as exc:  # fx raises many types; all mean "not traceable"
        raise UnsupportedModelError(trace_failure(model, exc)) from exc
    return fx.GraphModule(model, graph, class_name=type(model).__name__)


def _first_error(model: nn.Module) -> Exception | None:
    try:
        _Tracer().trace(model)
    except Exception as exc:  # noqa: BLE001 - any failure means "not traceable"
        return exc
    return None


def untraceable_submodule(model: nn.Module) -> tuple[str, nn.Module, Exception] | None:
    """The deepest submodule that torch.fx cannot trace on its own (its children all trace), or ``None``."""
    found: tuple[str, nn.Module, Exception] | None = None
    prefix, current = "", model
    while True:
        for name, child in current.named_children():
            exc = _first_error(child) if not isinstance(child, tuple(_LEAVES)) else None
            if exc is not None:
                prefix = f"{prefix}.{name}" if prefix else name
                found, current = (prefix, child, exc), child
                break
        else:
            return found


def _is_activation(module: nn.Module) -> bool:
    if isinstance(module, ACTIVATION_MODULES):
        return True
    return isinstance(module, nn.Hardtanh) and module.min_val == 0 and module.max_val > 0


def trace_failure(model: nn.Module, exc: Exception) -> str:
    """The message of a tracing failure: which submodule fails, why, and what the user can do."""
    error = " ".join(f"{type(exc).__name__}: {exc}".split())[:300]
    found = untraceable_submodule(model)
    if found is None:
        return (
            f"torch.fx could not trace {type(model).__name__} ({error}); ann2snn needs a model without "
            "data-dependent control flow in its forward"
        )
    name, sub, sub_exc = found
    sub_error = " ".join(f"{type(sub_exc).__name__}: {sub_exc}".split())[:300]
    what = f"torch.fx could not trace {type(model).__name__}: submodule '{name}' ({type(sub).__name__}) fails"
    what += f" ({sub_error})"
    if any(_is_activation(m) for m in sub.modules()):
        return (
            f"{what}; it contains activations, so it cannot be an opaque leaf: rewrite its forward without "
            "data-dependent control flow (or replace the block)"
        )
    return (
        f"{what}; it has no activation module: declare it with ann2snn.transforms.register_leaf({type(sub).__name__}) "
        f"and, if it is exact on spikes (per sample, affine or value-moving), "
        f"ann2snn.register_layer({type(sub).__name__}, why=...)"
    )


def set_submodule(root: nn.Module, target: str, module: nn.Module) -> None:
    """Replace (or add) the submodule at dotted path ``target``."""
    parent_name, _, name = target.rpartition(".")
    parent = root.get_submodule(parent_name) if parent_name else root
    setattr(parent, name, module)
