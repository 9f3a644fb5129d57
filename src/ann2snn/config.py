"""Frozen, validated configuration objects with a JSON round trip.

Every value is checked in ``__post_init__`` so a bad setting fails at construction with a message naming the
field, the bad value and the accepted ones.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, TypeVar

from ann2snn.errors import ConfigError
from ann2snn.limits import FLOAT32_SAFE, INT_RANGES, check_float32, check_int

CONFIG_VERSION = 1

ACTIVATIONS = ("qcfs", "clip", "steprelu")
STEP_ROUNDINGS = ("ceil", "floor")
METHODS = ("serial", "parallel", "srp", "cos", "steprelu")
PRESIM_METHODS = ("srp", "cos")  # methods with pre-simulation steps (latency presteps + T)
NEURONS = ("if", "lif", "signed_if")
RESETS = ("subtract", "zero")
LEAK_MODES = ("exponential", "linear")
THRESHOLD_MODES = ("auto", "max", "percentile", "mse")
CALIBRATIONS = ("da", "li_bias", "li_potential")  # error calibration after conversion (calibrate/)
ESTIMATORS = ("match", "ema", "ema_theta", "mean")  # how DA calibration estimates ψ_DA / φ_DA
CALIBRATION_SITES = ("all", "conv")  # which parallel neurons DA calibration calibrates
SPIKE_ORDERS = ("front", "back")
QCFS_GRADIENTS = ("reference", "clamped")  # straight-through rules of QCFS (functional.quant.qcfs)

C = TypeVar("C", bound="_Config")


def _choice(name: str, value: Any, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ConfigError(f"{name}={value!r} is not supported; choose one of {', '.join(map(repr, allowed))}")


def _positive_int(name: str, value: Any) -> None:
    """A positive integer; settings listed in :data:`ann2snn.limits.INT_RANGES` must also be in their range."""
    if name in INT_RANGES:
        check_int(name, value)
        if value > 0:
            return
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ConfigError(f"{name}={value!r} must be a positive integer (e.g. {name}=8)")


def _bool(name: str, value: Any) -> None:
    if not isinstance(value, bool):
        raise ConfigError(f"{name}={value!r} must be True or False")


def _finite(name: str, value: Any, low: float | None = None, high: float | None = None, low_open: bool = False) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ConfigError(f"{name}={value!r} must be a finite number")
    if low is not None and (value < low or (low_open and value == low)):
        bound = f"> {low}" if low_open else f">= {low}"
        raise ConfigError(f"{name}={value!r} must be {bound}")
    if high is not None and value > high:
        raise ConfigError(f"{name}={value!r} must be <= {high}")


@dataclasses.dataclass(frozen=True)
class _Config:
    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form with a ``version`` and ``kind`` field."""
        data = dataclasses.asdict(self)
        data["kind"] = type(self).__name__
        data["version"] = CONFIG_VERSION
        return data

    @classmethod
    def from_dict(cls: type[C], data: dict[str, Any]) -> C:
        """Rebuild from :meth:`to_dict` output; unknown keys and a wrong kind/version are errors."""
        if not isinstance(data, dict):
            raise ConfigError(f"{cls.__name__} must be read from a JSON object, got {type(data).__name__}")
        data = dict(data)
        kind = data.pop("kind", cls.__name__)
        version = data.pop("version", CONFIG_VERSION)
        if kind != cls.__name__:
            raise ConfigError(f"expected a {cls.__name__} config, got kind={kind!r}")
        if version != CONFIG_VERSION:
            raise ConfigError(
                f"{cls.__name__} version {version!r} is not supported (this ann2snn reads version {CONFIG_VERSION})"
            )
        bad_keys = [k for k in data if not isinstance(k, str)]
        if bad_keys:
            raise ConfigError(f"{cls.__name__} field names must be strings, got {bad_keys[0]!r}")
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ConfigError(
                f"unknown {cls.__name__} field(s): {', '.join(unknown)}; known: {', '.join(sorted(names))}"
            )
        return cls(**data)

    def replace(self: C, **changes: Any) -> C:
        """A copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)


def _check_baselines(config: Any) -> None:
    """Cross-field checks of ``presteps`` (SRP/COS) and ``neg_threshold`` (signed IF)."""
    p = check_int("presteps", config.presteps)
    if p and config.method not in PRESIM_METHODS:
        raise ConfigError(
            f"presteps={p} only applies to method='srp' or 'cos', not method={config.method!r}; use presteps=0"
        )
    if config.method in PRESIM_METHODS and config.neuron != "if":
        raise ConfigError(f"method={config.method!r} runs IF neurons; use neuron='if', not {config.neuron!r}")
    if config.neuron == "signed_if" and config.method != "serial":
        raise ConfigError(f"neuron='signed_if' needs method='serial', not method={config.method!r}")
    if (config.method in PRESIM_METHODS or config.neuron == "signed_if") and config.reset != "subtract":
        raise ConfigError(
            f"method={config.method!r}, neuron={config.neuron!r} reset by subtraction; use reset='subtract'"
        )
    if config.neg_threshold is not None:
        check_float32("neg_threshold", config.neg_threshold)
        if config.neg_threshold >= config.v_init:
            raise ConfigError(
                f"neg_threshold={config.neg_threshold!r} must be below v_init={config.v_init!r} (fractions of θ)"
            )


def _check_calibration(config: Any) -> None:
    """Fields of error calibration (``calibration``, ``estimator``, ``ema_alpha``, ``calibration_batches``,
    ``calibration_sites``)."""
    if config.calibration is not None:
        _choice("calibration", config.calibration, CALIBRATIONS)
    _choice("estimator", config.estimator, ESTIMATORS)
    _choice("calibration_sites", config.calibration_sites, CALIBRATION_SITES)
    _finite("ema_alpha", config.ema_alpha, 0.0, 1.0, low_open=True)
    if config.ema_alpha == 1.0:
        raise ConfigError("ema_alpha=1.0 never updates the estimate; use a value in (0, 1) such as 0.99")
    _positive_int("calibration_batches", config.calibration_batches)
    if config.weight_refit is not None:
        _bool("weight_refit", config.weight_refit)
    if config.weight_refit and (config.calibration != "da" or config.estimator != "match"):
        raise ConfigError(
            "weight_refit=True refits weights during DA calibration with estimator='match'; set "
            f"calibration='da', estimator='match' (got calibration={config.calibration!r}, "
            f"estimator={config.estimator!r}) or leave weight_refit=None"
        )
    if config.calibration_sites != "all" and config.calibration != "da":
        raise ConfigError(
            f"calibration_sites={config.calibration_sites!r} picks the sites of DA calibration; set "
            f"calibration='da' (got {config.calibration!r}) or leave calibration_sites='all'"
        )
    if config.calibration == "da" and config.method != "parallel":
        raise ConfigError(f"calibration='da' calibrates parallel neurons; use method='parallel', not {config.method!r}")
    if config.calibration in ("li_bias", "li_potential") and (config.method != "serial" or config.neuron != "if"):
        raise ConfigError(
            f"calibration={config.calibration!r} calibrates serial IF neurons; use method='serial', neuron='if' "
            f"(got method={config.method!r}, neuron={config.neuron!r})"
        )


@dataclasses.dataclass(frozen=True)
class QuantConfig(_Config):
    """How :func:`ann2snn.prepare` swaps ReLUs for quantization-aware activations.

    Attributes:
        activation: ``"qcfs"`` (clip-floor-shift, ``levels`` L), ``"clip"`` (ClipReLU) or ``"steprelu"``.
        levels: L, the number of quantization steps of QCFS, in 1..65536.
        threshold: initial θ of QCFS / ClipReLU, in [1e-6, 1e6] (a float32 tensor: larger overflows in products).
        learn_threshold: whether θ is a trainable parameter.
        step: StepReLU step θ_s, in [1e-6, 1e6], with ``step * steps <= 1e6``.
        steps: StepReLU number of steps n, in 1..65536 (the staircase covers (0, n·θ_s]).
        step_rounding: ``"ceil"`` (the authors' ceil−1 staircase) or ``"floor"``.
        step_clip: clip StepReLU at n·θ_s instead of passing larger inputs unchanged.
        qcfs_gradient: QCFS's straight-through backward rule: ``"reference"`` (as QCFS's released code: dy/dz = 1
            on [−θ/2L, θ + θ/2L)) or ``"clamped"`` (ann2snn 0.1: dy/dz = 1 on [−θ/2L, θ − θ/2L]).
    """

    activation: str = "qcfs"
    levels: int = 8
    threshold: float = 8.0
    learn_threshold: bool = True
    step: float = 0.05
    steps: int = 20
    step_rounding: str = "ceil"
    step_clip: bool = False
    qcfs_gradient: str = "reference"

    def __post_init__(self) -> None:
        _choice("activation", self.activation, ACTIVATIONS)
        _choice("qcfs_gradient", self.qcfs_gradient, QCFS_GRADIENTS)
        _positive_int("levels", self.levels)
        check_float32("threshold", self.threshold, positive=True)
        check_float32("step", self.step, positive=True)
        _positive_int("steps", self.steps)
        if self.step * self.steps > FLOAT32_SAFE:
            raise ConfigError(
                f"step={self.step!r} x steps={self.steps!r} = {self.step * self.steps:g} is out of range: the StepReLU "
                f"staircase must end at most at {FLOAT32_SAFE:g} (a float32 tensor); use fewer or smaller steps"
            )
        _choice("step_rounding", self.step_rounding, STEP_ROUNDINGS)
        _bool("learn_threshold", self.learn_threshold)
        _bool("step_clip", self.step_clip)


@dataclasses.dataclass(frozen=True)
class ConversionConfig(_Config):
    """How :func:`ann2snn.convert` turns an ANN into an SNN.

    Attributes:
        method: ``"serial"`` (IF/LIF neurons stepped over time) or ``"parallel"`` (parallel IF neurons).
        timesteps: T, the default number of simulation steps, in 1..1000000.
        neuron: serial neuron type, ``"if"`` or ``"lif"``.
        leak: λ of the exponential leak (``v ← λ·v + I``), in (0, 1]; 1.0 is IF.
        leak_mode: ``"exponential"`` (λ) or ``"linear"`` (``v ← v − leak_delta·θ + I``).
        leak_delta: linear leak per step, as a fraction of θ, in [0, 1e6].
        v_init: initial membrane potential as a fraction of θ (QCFS: 0.5; Diehl/Rueckauer: 0).
        reset: ``"subtract"`` (soft reset) or ``"zero"`` (hard reset).
        threshold_mode: thresholds of plain-ReLU sites: ``"auto"`` (activation θ where present, else
            percentile), ``"max"`` or ``"percentile"`` of the activations on ``calibration_data``.
        percentile: the percentile for ``threshold_mode="percentile"`` (or ``"auto"`` on a ReLU).
        per_channel: record data thresholds per channel instead of per layer.
        order: parallel spike order: ``"front"`` (spikes first) or ``"back"`` (spikes last, as the paper).
        presteps: pre-simulation steps of ``method="srp"`` (τ) or ``"cos"`` (ρ), in 0..4096; latency is
            ``presteps + T``.
        neg_threshold: negative threshold of ``neuron="signed_if"`` as a fraction of θ; ``None`` is the
            symmetric ``2·v_init − 1`` (0 at ``v_init=0.5``; −1 at ``v_init=0``, as SNM).
        calibration: error calibration on ``calibration_data`` after conversion: ``"da"`` (distribution-aware,
            parallel), ``"li_bias"`` / ``"li_potential"`` (Li et al. 2021 bias / potential correction, serial IF)
            or ``None``. ``threshold_mode="mse"`` searches thresholds minimising the activation MSE at T.
        estimator: DA estimator of ψ_DA/φ_DA: ``"match"`` (exact per-channel output-mean matching, the default:
            best with few batches), ``"ema"`` (the paper's rule as the authors' code runs it, α = ``ema_alpha``),
            ``"ema_theta"`` (an EMA of the output gap at amplitude θ) or ``"mean"`` (its running mean).
        ema_alpha: α of ``estimator="ema"``, in (0, 1).
        calibration_batches: at most this many batches (1..100000) of ``calibration_data`` are used by
            ``calibration``.
        calibration_sites: which sites DA calibration calibrates: ``"all"`` or ``"conv"`` (only those on conv
            feature maps, as the authors' code; the others keep ψ_DA = φ_DA = 0).
        weight_refit: with ``calibration="da"``, also refit the Conv2d/Linear layers fed by spikes by ridge
            regression onto the ANN's pre-activations (closed form; held-out λ, per layer). ``None`` (default): on
            with ``estimator="match"`` at T = 1 or for plain-ReLU sites (where it pays), off otherwise; ``True`` /
            ``False`` force it.
    """

    method: str = "parallel"
    timesteps: int = 8
    neuron: str = "if"
    leak: float = 1.0
    leak_mode: str = "exponential"
    leak_delta: float = 0.0
    v_init: float = 0.5
    reset: str = "subtract"
    threshold_mode: str = "auto"
    percentile: float = 99.9
    per_channel: bool = False
    order: str = "front"
    presteps: int = 0
    neg_threshold: float | None = None
    calibration: str | None = None
    estimator: str = "match"
    ema_alpha: float = 0.99
    calibration_batches: int = 16
    weight_refit: bool | None = None
    calibration_sites: str = "all"

    def __post_init__(self) -> None:
        _choice("method", self.method, METHODS)
        _positive_int("timesteps", self.timesteps)
        _choice("neuron", self.neuron, NEURONS)
        _finite("leak", self.leak, 0.0, 1.0, low_open=True)
        _choice("leak_mode", self.leak_mode, LEAK_MODES)
        _finite("leak_delta", self.leak_delta, 0.0)
        check_float32("leak_delta", self.leak_delta)
        _finite("v_init", self.v_init, 0.0, 1.0)
        _choice("reset", self.reset, RESETS)
        _choice("threshold_mode", self.threshold_mode, THRESHOLD_MODES)
        _finite("percentile", self.percentile, 0.0, 100.0, low_open=True)
        _choice("order", self.order, SPIKE_ORDERS)
        _bool("per_channel", self.per_channel)
        _check_baselines(self)
        _check_calibration(self)
