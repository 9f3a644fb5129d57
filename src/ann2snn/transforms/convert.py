"""``convert``: fold BN and replace every activation site with a spiking neuron (serial or parallel)."""

from __future__ import annotations

import copy
import dataclasses
import itertools
import logging
from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch import Tensor, fx, nn

from ann2snn.calibrate.observers import record_site_inputs
from ann2snn.config import ConversionConfig
from ann2snn.errors import ConfigError, UnsupportedModelError
from ann2snn.layers.activations import QCFS, ClipReLU, StepReLU
from ann2snn.layers.neurons import IFNeuron, ParallelIFNeuron, SpikingNeuron
from ann2snn.simulate.model import SiteInfo, SpikingModel
from ann2snn.transforms.fold_bn import fold_bn_graph
from ann2snn.transforms.registry import (
    UNSUPPORTED_HINT,
    describe,
    is_activation_site,
    is_maxpool,
    is_supported_layer,
)
from ann2snn.transforms.sites import check_activations, modularize_sites
from ann2snn.transforms.trace import set_submodule, trace
from ann2snn.validation import check_finite_model

log = logging.getLogger("ann2snn")


@dataclasses.dataclass
class Site:
    """An activation site during conversion: its ANN module and the threshold chosen for its neuron."""

    name: str
    module: nn.Module
    source: str
    levels: int | None
    threshold: Tensor
    threshold_from: str


NeuronFactory = Callable[[Site, ConversionConfig], SpikingNeuron]
_METHODS: dict[str, tuple[NeuronFactory, str]] = {}


def register_method(name: str, execution: str) -> Callable[[NeuronFactory], NeuronFactory]:
    """Register the neuron factory of a conversion method; ``execution`` is ``"serial"`` or ``"parallel"``."""

    def deco(factory: NeuronFactory) -> NeuronFactory:
        _METHODS[name] = (factory, execution)
        return factory

    return deco


_SHAPE_ONLY_METHODS = {"view", "reshape", "flatten", "contiguous", "unsqueeze", "squeeze"}


def _fed_by_neuron(node: fx.Node, modules: dict[str, nn.Module]) -> bool:
    """Whether ``node``'s input is a neuron's spike train, possibly through shape-only ops or other max-pools."""
    src = node.args[0] if node.args else None
    while isinstance(src, fx.Node):
        if src.op == "call_module":
            mod = modules[str(src.target)]
            if isinstance(mod, SpikingNeuron):
                return True
            if not (isinstance(mod, (nn.Flatten, nn.Identity, nn.Dropout)) or is_maxpool(src, modules)):
                return False
        elif not (
            is_maxpool(src, modules)
            or (src.op == "call_method" and src.target in _SHAPE_ONLY_METHODS)
            or (src.op == "call_function" and src.target in (torch.flatten, torch.reshape))
        ):
            return False
        src = src.args[0] if src.args else None
    return False


def _maxpool_note(node: fx.Node, modules: dict[str, nn.Module], execution: str) -> str:
    what = f"max-pool {describe(node, modules)} kept"
    if execution != "parallel":
        return f"{what}: on serial spikes it over-estimates the max rate (not exact)"
    if _fed_by_neuron(node, modules):
        return f"{what}: exact (max of sorted equal-amplitude spike trains is the train of the max level)"
    return (
        f"{what}: NOT exact, its input is not a neuron's spike train (the max of time-averages differs from "
        "the time-average of maxima); move it directly after an activation for a lossless conversion"
    )


@register_method("serial", "serial")
def _serial_neuron(site: Site, config: ConversionConfig) -> SpikingNeuron:
    if config.neuron == "signed_if":
        from ann2snn.layers.baseline_neurons import SignedIFNeuron

        return SignedIFNeuron(site.threshold, v_init=config.v_init, neg_threshold=config.neg_threshold)
    lif = config.neuron == "lif"
    return IFNeuron(
        site.threshold,
        v_init=config.v_init,
        leak=config.leak if lif and config.leak_mode == "exponential" else 1.0,
        leak_delta=config.leak_delta if lif and config.leak_mode == "linear" else 0.0,
        reset=config.reset,
    )


@register_method("parallel", "parallel")
def _parallel_neuron(site: Site, config: ConversionConfig) -> SpikingNeuron:
    return ParallelIFNeuron(site.threshold, config.timesteps, order=config.order)


def _source(module: nn.Module) -> tuple[str, int | None, Tensor | None]:
    if isinstance(module, QCFS):
        return "qcfs", module.levels, module.threshold.detach().clone()
    if isinstance(module, ClipReLU):
        return "clip", None, module.threshold.detach().clone()
    if isinstance(module, StepReLU):  # threshold Θ = n·θ_s (docs/steprelu.md)
        return "steprelu", module.steps, torch.tensor(module.step * module.steps, dtype=torch.float64)
    return "relu", None, None


def _check_layers(gm: fx.GraphModule) -> None:
    modules = dict(gm.named_modules())
    bad = [
        describe(n, modules)
        for n in gm.graph.nodes
        if not is_activation_site(n, modules) and not is_supported_layer(n, modules)
    ]
    if bad:
        raise UnsupportedModelError(
            f"convert: {len(bad)} layer(s) cannot run on spikes: {'; '.join(bad)}. {UNSUPPORTED_HINT}"
        )


def _collect_sites(
    gm: fx.GraphModule,
    names: list[str],
    config: ConversionConfig,
    calibration_data: Iterable[Any] | None,
    max_batches: int | None,
) -> list[Site]:
    infos = {name: _source(gm.get_submodule(name)) for name in names}
    steprelu = [n for n, (src, _, _) in infos.items() if src == "steprelu"]
    if steprelu and config.method != "steprelu":
        raise UnsupportedModelError(
            f"convert: StepReLU sites {steprelu} convert only with ConversionConfig(method='steprelu')"
        )
    if config.method == "steprelu" and len(steprelu) != len(infos):
        others = [n for n in infos if n not in steprelu]
        raise UnsupportedModelError(
            f"convert: method='steprelu' needs StepReLU at every site, but {others} are not; prepare the model "
            "with QuantConfig(activation='steprelu') or pick another method"
        )
    data_mode = config.threshold_mode
    need_data = [n for n, (_, _, th) in infos.items() if data_mode != "auto" or th is None]
    observed = {}
    if need_data:
        if calibration_data is None:
            raise ConfigError(
                f"convert: activation site(s) {need_data} have no trained threshold (plain ReLU) or "
                f"threshold_mode={data_mode!r} asks for data: pass calibration_data= (an iterable of input "
                "batches, e.g. a DataLoader over a few hundred training images)"
            )
        observed = record_site_inputs(gm, need_data, calibration_data, config.per_channel, max_batches)
    sites = []
    for name in names:
        src, levels, th = infos[name]
        if name in observed:
            mode = "percentile" if data_mode == "auto" else data_mode
            shift = 0.5 if config.method == "parallel" else config.v_init
            th, origin = observed[name].threshold(mode, config.percentile, config.timesteps, shift), mode
            if mode == "percentile":
                origin = f"{config.percentile:g}th percentile"
            origin += " per channel" if config.per_channel else " per layer"
        else:
            origin = f"{src} threshold"
        assert th is not None
        if not bool(torch.all(th > 0)):
            raise ConfigError(
                f"site '{name}' has a non-positive threshold {th.min().item():.4g}; thresholds must be > 0"
            )
        sites.append(Site(name, gm.get_submodule(name), src, levels, th, origin))
    return sites


def convert(
    model: nn.Module,
    config: ConversionConfig | None = None,
    *,
    calibration_data: Iterable[Any] | None = None,
    max_batches: int | None = 16,
) -> SpikingModel:
    """Convert a (QCFS/ClipReLU/ReLU) ANN into a :class:`SpikingModel`; the input model is not mutated.

    BatchNorm after conv/linear is folded. Every activation site becomes a neuron of ``config.method`` with the
    site's trained threshold (QCFS/ClipReLU) or a threshold from ``calibration_data`` (plain ReLU, or
    ``threshold_mode="max"|"percentile"``), using at most ``max_batches`` batches.
    """
    config = ConversionConfig() if config is None else config
    if not isinstance(config, ConversionConfig):
        raise ConfigError(f"convert expects a ConversionConfig, got {type(config).__name__}")
    if config.method not in _METHODS:
        raise ConfigError(f"method={config.method!r} has no registered converter; known: {sorted(_METHODS)}")
    if not isinstance(model, nn.Module):
        raise UnsupportedModelError(f"convert expects a torch.nn.Module, got {type(model).__name__}")
    check_finite_model(model)
    if config.calibration is not None and calibration_data is not None and iter(calibration_data) is calibration_data:
        # a one-shot iterator feeds both thresholds and calibration
        calibration_data = list(itertools.islice(calibration_data, max(max_batches or 0, config.calibration_batches)))
    gm = trace(copy.deepcopy(model).eval())
    check_activations(gm, "convert")
    names = modularize_sites(gm)
    if not names:
        raise UnsupportedModelError(f"convert found no activation (ReLU/QCFS/ClipReLU) in {type(model).__name__}")
    _check_layers(gm)
    notes = [f"folded BatchNorm '{n}' into the preceding layer" for n in fold_bn_graph(gm)]
    sites = _collect_sites(gm, names, config, calibration_data, max_batches)
    factory, execution = _METHODS[config.method]
    param = next(gm.parameters(), None)
    infos = []
    for site in sites:
        neuron = factory(site, config)
        if param is not None:
            neuron = neuron.to(device=param.device, dtype=param.dtype)
        set_submodule(gm, site.name, neuron)
        infos.append(SiteInfo(site.name, site.source, site.levels, site.threshold_from, type(neuron).__name__))
    modules = dict(gm.named_modules())
    for node in gm.graph.nodes:
        if is_maxpool(node, modules):
            notes.append(_maxpool_note(node, modules, execution))
    gm.recompile()
    for note in notes:
        log.info(note)
    snn = SpikingModel(gm, config, infos, notes, execution).train(False)
    if config.calibration is not None:  # error calibration (calibrate/): DA, or Li bias/potential correction
        from ann2snn.calibrate.api import calibrate

        before = len(snn.log)
        snn = calibrate(snn, model, calibration_data, config, inplace=True)
        for note in snn.log[before:]:
            log.info(note)
    return snn
