"""``method="steprelu"``: StepReLU ANNs to integrate-then-fire neurons (membrane-potential encoding), and leaks.

Every StepReLU site (step θ_s, n steps, rounding, clip) becomes a :class:`~ann2snn.layers.step_neuron.StepIFNeuron`
with threshold Θ = n·θ_s. At ``timesteps = n`` the SNN reproduces the StepReLU ANN: bit for bit in rate mode, up to
float round-off of the summed currents in spike mode (derivation in docs/steprelu.md).

Leaks: ``ConversionConfig(neuron="lif", leak=λ)`` (exponential) or ``leak_mode="linear", leak_delta=δ`` sets the
leak of every neuron; :func:`set_leak` sets it per layer on any converted SNN (serial IF/LIF or StepReLU neurons)
and returns a new model.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping

from ann2snn.config import ConversionConfig, _finite
from ann2snn.errors import ConfigError
from ann2snn.layers.activations import StepReLU
from ann2snn.layers.neurons import IFNeuron, SpikingNeuron
from ann2snn.layers.step_neuron import StepIFNeuron
from ann2snn.simulate.model import SpikingModel
from ann2snn.transforms.convert import Site, register_conversion_method

LeakValue = float | tuple[float, float] | Mapping[str, float]


def _config_leak(config: ConversionConfig) -> tuple[float, float]:
    """``(λ, δ)`` of ``config``; a leak set while ``neuron="if"`` is an error rather than silently ignored."""
    leaky = config.leak != 1.0 or config.leak_delta != 0.0
    if config.neuron == "if":
        if leaky:
            raise ConfigError(
                f"leak={config.leak}, leak_delta={config.leak_delta} need neuron='lif' (neuron='if' has no leak)"
            )
        return 1.0, 0.0
    if config.neuron != "lif":
        raise ConfigError(f"method='steprelu' runs 'if' or 'lif' neurons, not neuron={config.neuron!r}")
    if config.leak_mode == "exponential":
        return config.leak, 0.0
    return 1.0, config.leak_delta


@register_conversion_method("steprelu", "parallel")
def _step_neuron(site: Site, config: ConversionConfig) -> SpikingNeuron:
    module = site.module
    if not isinstance(module, StepReLU):  # convert() checks this first; kept for direct callers
        raise ConfigError(f"site '{site.name}' is {type(module).__name__}, not StepReLU")
    leak, delta = _config_leak(config)
    return StepIFNeuron(
        module.step,
        module.steps,
        config.timesteps,
        rounding=module.rounding,
        clip=module.clip,
        leak=leak,
        leak_delta=delta,
        order=config.order,
    )


def _leak_pair(name: str, value: LeakValue) -> tuple[float, float]:
    if isinstance(value, Mapping):
        unknown = set(value) - {"leak", "leak_delta"}
        if unknown:
            raise ConfigError(
                f"set_leak: layer '{name}' has unknown key(s) {sorted(unknown)}; use 'leak', 'leak_delta'"
            )
        pair = (value.get("leak", 1.0), value.get("leak_delta", 0.0))
    elif isinstance(value, tuple):
        if len(value) != 2:
            raise ConfigError(f"set_leak: layer '{name}' needs (leak, leak_delta), got {value!r}")
        pair = value
    else:
        pair = (value, 0.0)
    _finite(f"leak of '{name}'", pair[0], 0.0, 1.0, low_open=True)
    _finite(f"leak_delta of '{name}'", pair[1], 0.0)
    return float(pair[0]), float(pair[1])


def _has_leak(m: SpikingNeuron) -> bool:
    # SRP/COS neurons subclass IFNeuron but step without a leak: exact type only.
    return type(m) is IFNeuron or isinstance(m, StepIFNeuron)


def set_leak(snn: SpikingModel, leaks: LeakValue | Mapping[str, LeakValue]) -> SpikingModel:
    """A copy of ``snn`` whose neurons have new leaks; ``snn`` is not changed.

    Args:
        snn: A converted SNN whose neurons are serial IF/LIF (``method="serial"``) or StepReLU neurons.
        leaks: One value for every neuron, or ``{"layer.name": value}`` for some of them (see
            :meth:`SpikingModel.neurons` for the names). A value is λ (exponential leak, ``v ← λ·v + I``), a pair
            ``(λ, δ)``, or ``{"leak": λ, "leak_delta": δ}`` (δ: linear leak per step, a fraction of θ).

    Returns:
        The new :class:`~ann2snn.simulate.SpikingModel`; its ``log`` records the leaks that were set.
    """
    if not isinstance(snn, SpikingModel):
        raise ConfigError(f"set_leak expects a SpikingModel from ann2snn.convert, got {type(snn).__name__}")
    neurons = snn.neurons()
    if isinstance(leaks, Mapping) and not set(leaks) <= {"leak", "leak_delta"}:
        unknown = sorted(set(leaks) - set(neurons))
        if unknown:
            raise ConfigError(f"set_leak: no neuron layer(s) {unknown}; the SNN has {sorted(neurons)}")
        per_layer = {name: _leak_pair(name, v) for name, v in leaks.items()}
    else:
        pair = _leak_pair("every layer", leaks)  # type: ignore[arg-type]
        per_layer = dict.fromkeys(neurons, pair)
    bad = [f"{n} ({type(neurons[n]).__name__})" for n in per_layer if not _has_leak(neurons[n])]
    if bad:
        raise ConfigError(f"set_leak: neuron layer(s) {bad} have no leak; leaks apply to IF/LIF and StepReLU neurons")
    new = copy.deepcopy(snn)
    new_neurons = new.neurons()
    for name, (leak, delta) in per_layer.items():
        neuron = new_neurons[name]
        assert isinstance(neuron, IFNeuron | StepIFNeuron)
        neuron.leak, neuron.leak_delta = leak, delta
    new.log = [*snn.log, "set_leak: " + ", ".join(f"{n} λ={lk:g} δ={d:g}" for n, (lk, d) in per_layer.items())]
    return new


def get_leak(snn: SpikingModel) -> dict[str, tuple[float, float]]:
    """``{"layer.name": (λ, δ)}`` of every neuron with a leak."""
    out = {}
    for name, m in snn.neurons().items():
        if _has_leak(m):
            assert isinstance(m, IFNeuron | StepIFNeuron)
            out[name] = (m.leak, m.leak_delta)
    return out


__all__ = ["StepIFNeuron", "get_leak", "set_leak"]
