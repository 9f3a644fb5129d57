"""``prepare``: swap every ReLU form for a quantization-aware activation (QCFS, ClipReLU, StepReLU)."""

from __future__ import annotations

import copy

from torch import nn

from ann2snn.config import QuantConfig
from ann2snn.errors import ConfigError, UnsupportedModelError
from ann2snn.layers.activations import QCFS, ClipReLU, StepReLU
from ann2snn.transforms.sites import check_activations, modularize_sites, needs_graph, site_targets
from ann2snn.transforms.trace import set_submodule, trace


def make_activation(config: QuantConfig) -> nn.Module:
    """A fresh activation module for one site, as ``config`` describes."""
    if config.activation == "qcfs":
        return QCFS(config.levels, config.threshold, config.learn_threshold, config.qcfs_gradient)
    if config.activation == "clip":
        return ClipReLU(config.threshold, config.learn_threshold)
    return StepReLU(config.step, config.steps, config.step_rounding, config.step_clip)


def prepare(model: nn.Module, config: QuantConfig | None = None) -> nn.Module:
    """Return a copy of ``model`` with every ReLU (nn.ReLU, inplace, F.relu, torch.relu, Tensor.relu,
    clamp(min=0)) replaced by the activation of ``config`` (QCFS with L=8 by default).

    The input model is never mutated. A model whose ReLUs are all distinct ``nn.ReLU`` modules keeps its class;
    otherwise a ``torch.fx.GraphModule`` is returned, with ``model_kwargs`` carried over. Other nonlinearities
    (GELU, SiLU, sigmoid, ...) are an error naming each node.
    """
    config = QuantConfig() if config is None else config
    if not isinstance(config, QuantConfig):
        raise ConfigError(f"prepare expects a QuantConfig, got {type(config).__name__}")
    model_copy = copy.deepcopy(model) if isinstance(model, nn.Module) else model
    gm = trace(model_copy)
    check_activations(gm, "prepare")
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
            f"prepare found no ReLU in {type(model).__name__}; nothing to quantize (is it already prepared?)"
        )
    relus = [name for name in sites if type(gm.get_submodule(name)) is nn.ReLU]
    if not relus:
        kinds = sorted({type(gm.get_submodule(name)).__name__ for name in sites})
        raise ConfigError(
            f"prepare: {type(model).__name__} is already prepared (its activations are {', '.join(kinds)}) and has "
            "no ReLU left to swap; prepare the original ReLU model to use another QuantConfig"
        )
    for name in relus:
        set_submodule(target, name, make_activation(config))
    target.train(model.training)
    return target
