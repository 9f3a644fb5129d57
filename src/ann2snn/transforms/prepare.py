"""``prepare``: swap every ReLU form for a quantization-aware activation (QCFS, ClipReLU, StepReLU)."""

from __future__ import annotations

import copy

from torch import nn

from ann2snn.config import QuantConfig
from ann2snn.errors import ConfigError, UnsupportedModelError
from ann2snn.layers.activations import QCFS, ClipReLU, StepReLU
from ann2snn.transforms.analysis import analyze, refuse
from ann2snn.transforms.sites import modularize_sites, needs_graph, site_targets
from ann2snn.transforms.trace import set_submodule, trace


def make_activation(config: QuantConfig, bound: float | None = None) -> nn.Module:
    """A fresh activation module for one site, as ``config`` describes.

    ``bound`` is the b of a clipped-ReLU site ``clamp(x, 0, b)``: QCFS and ClipReLU start with θ = b, StepReLU
    gets step b/n and clips at n·step = b.
    """
    threshold = config.threshold if bound is None else bound
    if config.activation == "qcfs":
        return QCFS(config.levels, threshold, config.learn_threshold, config.qcfs_gradient)
    if config.activation == "clip":
        return ClipReLU(threshold, config.learn_threshold)
    if bound is not None:
        return StepReLU(bound / config.steps, config.steps, config.step_rounding, clip=True)
    return StepReLU(config.step, config.steps, config.step_rounding, config.step_clip)


def _bound(module: nn.Module) -> float | None:
    """b of an ``nn.Hardtanh(0, b)`` site module (``nn.ReLU6`` is one), ``None`` for ``nn.ReLU``."""
    return float(module.max_val) if isinstance(module, nn.Hardtanh) else None


def prepare(model: nn.Module, config: QuantConfig | None = None) -> nn.Module:
    """Return a copy of ``model`` with every activation site replaced by the activation of ``config``.

    Sites are ReLUs (nn.ReLU, inplace, F.relu, torch.relu, Tensor.relu, clamp(min=0)) and clipped ReLUs
    ``clamp(x, 0, b)`` with b > 0 (nn.ReLU6, F.relu6, nn.Hardtanh(0, b), F.hardtanh(x, 0, b), torch.clamp /
    Tensor.clamp / clip(x, 0, b)). A ReLU gets ``config``'s activation (QCFS with L=8 by default) with its initial
    threshold ``config.threshold``; a clipped ReLU gets the same activation with initial θ = b (StepReLU: step
    b/n, clipped at b), so the prepared model starts as close to the original as quantization allows.

    The input model is never mutated. A model whose sites are all distinct modules keeps its class; otherwise a
    ``torch.fx.GraphModule`` is returned, with ``model_kwargs`` carried over. Everything :func:`convert` would
    refuse is refused here, before any training: other nonlinearities (GELU, SiLU, sigmoid, LayerNorm,
    attention, ...) and ops that cannot run on spikes, in one error grouped by kind.
    """
    config = QuantConfig() if config is None else config
    if not isinstance(config, QuantConfig):
        raise ConfigError(f"prepare expects a QuantConfig, got {type(config).__name__}")
    model_copy = copy.deepcopy(model) if isinstance(model, nn.Module) else model
    gm = trace(model_copy)
    # convert sees the eval-mode graph (it may differ: auxiliary heads, batch-norm flags), so judge that one
    refuse(analyze(trace(copy.deepcopy(model).eval()) if model.training else gm), "prepare", type(model).__name__)
    if needs_graph(gm):
        modularize_sites(gm)
        target: nn.Module = gm
        if hasattr(model, "model_kwargs"):
            gm.model_kwargs = copy.deepcopy(model.model_kwargs)  # type: ignore[assignment]
    else:
        target = model_copy
    sites = site_targets(gm)
    if not sites:
        raise UnsupportedModelError(
            f"prepare found no ReLU or clamp(x, 0, b) in {type(model).__name__}; nothing to quantize"
        )
    swap = [name for name in sites if type(gm.get_submodule(name)) is nn.ReLU or _bound(gm.get_submodule(name))]
    if not swap:
        kinds = sorted({type(gm.get_submodule(name)).__name__ for name in sites})
        raise ConfigError(
            f"prepare: {type(model).__name__} is already prepared (its activations are {', '.join(kinds)}) and has "
            "no ReLU left to swap; prepare the original ReLU model to use another QuantConfig"
        )
    for name in swap:
        set_submodule(target, name, make_activation(config, _bound(gm.get_submodule(name))))
    target.train(model.training)
    return target
