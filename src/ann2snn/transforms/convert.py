"""``convert``: fold BN and replace every activation site with a spiking neuron (serial or parallel)."""

from __future__ import annotations

import copy
import dataclasses
import itertools
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import torch
from torch import Tensor, fx, nn
from torch.fx.passes.shape_prop import ShapeProp

from ann2snn.calibrate.observers import record_site_inputs
from ann2snn.config import ConversionConfig
from ann2snn.errors import ConfigError, UnsupportedModelError
from ann2snn.layers.activations import QCFS, ClipReLU, StepReLU
from ann2snn.layers.neurons import IFNeuron, ParallelIFNeuron, SpikingNeuron
from ann2snn.simulate.model import SiteInfo, SpikingModel
from ann2snn.transforms.analysis import analyze, refuse
from ann2snn.transforms.fold_bn import fold_bn_graph
from ann2snn.transforms.maxpool import maxpool_note
from ann2snn.transforms.registry import is_batchnorm, is_maxpool, where
from ann2snn.transforms.sites import modularize_sites
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


def register_conversion_method(name: str, execution: str) -> Callable[[NeuronFactory], NeuronFactory]:
    """Register the neuron factory of a conversion method; ``execution`` is ``"serial"`` or ``"parallel"``."""

    def deco(factory: NeuronFactory) -> NeuronFactory:
        _METHODS[name] = (factory, execution)
        return factory

    return deco


@register_conversion_method("serial", "serial")
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


@register_conversion_method("parallel", "parallel")
def _parallel_neuron(site: Site, config: ConversionConfig) -> SpikingNeuron:
    return ParallelIFNeuron(site.threshold, config.timesteps, order=config.order)


def _source(module: nn.Module) -> tuple[str, int | None, Tensor | None]:
    if isinstance(module, QCFS):
        return "qcfs", module.levels, module.threshold.detach().clone()
    if isinstance(module, ClipReLU):
        return "clip", None, module.threshold.detach().clone()
    if isinstance(module, StepReLU):  # threshold Θ = n·θ_s (docs/steprelu.md)
        return "steprelu", module.steps, torch.tensor(module.step * module.steps, dtype=torch.float64)
    if isinstance(module, nn.Hardtanh):  # clamp(x, 0, b): ReLU6, hard-tanh, clamp (sites.py)
        return "clamp", None, torch.tensor(float(module.max_val), dtype=torch.float64)
    return "relu", None, None


def unfolded_bn_note(gm: fx.GraphModule, folding: bool = True) -> str | None:
    """One note naming the BatchNorms that stay in the graph after folding (e.g. BN before conv), or all of them
    when folding is off (``fold_batchnorm=False``)."""
    modules = dict(gm.named_modules())
    kept = [where(n) for n in gm.graph.nodes if is_batchnorm(n, modules)]
    if not kept:
        return None
    shown = ", ".join(kept[:4]) + (", ..." if len(kept) > 4 else "")
    if not folding:
        return (
            f"{len(kept)} BatchNorm(s) kept unfolded ({shown}) as fold_batchnorm=False asks: each runs as a "
            "per-channel affine map per time step, computing the ANN's own float expression"
        )
    return (
        f"{len(kept)} BatchNorm(s) kept unfolded ({shown}): not a BN module right after a conv/linear used only by "
        "it (BN before a conv, after a concat, or F.batch_norm); each runs as a per-channel affine map per time "
        "step: exact for the time mean, but the next layer receives non-binary input"
    )


def _shapes_from(gm: fx.GraphModule, calibration_data: Iterable[Any] | None) -> None:
    """Record tensor shapes in ``gm``'s node meta from one sample of the first calibration batch (if any)."""
    if calibration_data is None or iter(calibration_data) is calibration_data:  # keep one-shot iterators whole
        return
    batch = next(iter(calibration_data), None)
    x = batch[0] if isinstance(batch, (list, tuple)) else batch
    if not isinstance(x, Tensor):
        return
    param = next(gm.parameters(), None)
    try:
        with torch.no_grad():
            if param is not None:  # the sample goes to the model's device (a host batch would fail there)
                x = x.to(device=param.device, dtype=param.dtype)
            ShapeProp(gm).propagate(x[:1])
    except Exception:  # noqa: BLE001 - shapes only sharpen the max-pool notes; a failure shows up later
        return


def _collect_sites(
    gm: fx.GraphModule,
    names: list[str],
    config: ConversionConfig,
    calibration_data: Iterable[Any] | None,
    max_batches: int | None,
    progress: bool = False,
    thresholds: Mapping[str, tuple[Tensor, str]] | None = None,
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
    if thresholds is not None:  # rebuilding a saved SNN: its stored thresholds, no data
        missing = sorted(set(names) - set(thresholds))
        if missing:
            raise ConfigError(f"rebuild: no threshold for activation site(s) {missing}")
        return [Site(n, gm.get_submodule(n), infos[n][0], infos[n][1], *thresholds[n]) for n in names]
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
        observed = record_site_inputs(
            gm, need_data, calibration_data, config.per_channel, max_batches, progress=progress
        )
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
            if src == "clamp":  # never above the ANN's own clip: the neuron cannot usefully exceed b
                bound = infos[name][2]
                assert bound is not None
                th = torch.minimum(th, bound.to(th.dtype))
                origin += f", at most the clamp bound {bound.item():g}"
        elif src == "clamp":
            origin = f"clamp bound {th.item():g}"  # type: ignore[union-attr]
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
    progress: bool = True,
) -> SpikingModel:
    """Convert a (QCFS/ClipReLU/ReLU) ANN into a :class:`SpikingModel`; the input model is not mutated.

    BatchNorm after conv/linear is folded (the others stay as per-channel affine maps, named in ``snn.log``).
    Every activation site becomes a neuron of ``config.method`` with the site's trained threshold
    (QCFS/ClipReLU) or a threshold from ``calibration_data`` (plain ReLU, or ``threshold_mode="max"|
    "percentile"|"mse"``), using at most ``max_batches`` batches. A clipped-ReLU site ``clamp(x, 0, b)``
    (ReLU6, hard-tanh(0, b), clamp) takes θ = b with ``threshold_mode="auto"`` (no data needed), and with a data
    mode the data threshold capped at b: ``θ = min(θ_data, b)``.

    Every node that cannot run on spikes is refused in one grouped error before anything else is done
    (:func:`ann2snn.check` reports the same verdict without converting).

    ``progress`` reports the steps that read data (thresholds, calibration) as :mod:`ann2snn.evaluate.progress`
    says: a bar on a terminal, a line per step in logs; ``False`` is silent. ``snn.timings`` holds the seconds
    spent converting and calibrating.
    """
    start = time.perf_counter()
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
    snn = _build(model, config, calibration_data, max_batches, None, progress)
    snn.timings["convert"] = time.perf_counter() - start
    if config.calibration is not None:  # error calibration (calibrate/): DA, or Li bias/potential correction
        from ann2snn.calibrate.api import calibrate

        before = len(snn.log)
        start = time.perf_counter()
        snn = calibrate(snn, model, calibration_data, config, progress=progress, inplace=True)
        snn.timings["calibrate"] = time.perf_counter() - start
        for note in snn.log[before:]:
            log.info(note)
    return snn


def _build(
    model: nn.Module,
    config: ConversionConfig,
    calibration_data: Iterable[Any] | None,
    max_batches: int | None,
    thresholds: Mapping[str, tuple[Tensor, str]] | None,
    progress: bool = False,
) -> SpikingModel:
    """Trace, fold and replace every site with a neuron of ``config.method`` (no error calibration)."""
    gm = trace(copy.deepcopy(model).eval())
    refuse(analyze(gm), "convert", type(model).__name__)
    names = modularize_sites(gm)
    if not names:
        raise UnsupportedModelError(f"convert found no activation (ReLU/QCFS/ClipReLU) in {type(model).__name__}")
    folded = fold_bn_graph(gm) if config.fold_batchnorm else []
    notes = [f"folded BatchNorm '{n}' into the preceding layer" for n in folded]
    bn_note = unfolded_bn_note(gm, config.fold_batchnorm)
    notes += [bn_note] if bn_note else []
    if any(is_maxpool(n, dict(gm.named_modules())) for n in gm.graph.nodes):
        _shapes_from(gm, calibration_data)  # before the neurons: they need T·B rows
    sites = _collect_sites(gm, names, config, calibration_data, max_batches, progress, thresholds)
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
    notes += [maxpool_note(n, modules, execution) for n in gm.graph.nodes if is_maxpool(n, modules)]
    gm.recompile()
    for note in notes:
        log.info(note)
    return SpikingModel(gm, config, infos, notes, execution).train(False)


def rebuild(model: nn.Module, config: ConversionConfig, thresholds: Mapping[str, tuple[Tensor, str]]) -> SpikingModel:
    """The SNN structure ``convert(model, config)`` builds, with the given ``{site: (θ, origin)}`` thresholds.

    Reads no data and runs no error calibration: the caller (loading a saved SNN) then copies the saved
    tensors in. The model is not mutated.
    """
    return _build(model, config, None, None, thresholds)
