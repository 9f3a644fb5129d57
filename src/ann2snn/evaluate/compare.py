"""``compare``: several conversion methods of one ANN on the same data, side by side at equal latency.

Method names (``methods=``):

==========  ==========================================================================================
``serial``  IF neurons, v(0) = θ/2 (the QCFS baseline)
``parallel`` parallel IF neurons (Hao et al., ICML 2025)
``srp``     SRP: ``presteps`` (τ) pre-simulation steps, then silence neurons without residual potential
``cos``     COS: ``presteps`` (ρ) pre-simulation steps, then shift v(0) by the offset spike
``signed``  serial signed IF neurons (SNM / Fast-SNN)
``parallel+da`` parallel IF neurons with distribution-aware calibration (per T; needs ``calibration_data``)
==========  ==========================================================================================

``"srp:2"`` / ``"cos:8"`` set that entry's pre-simulation steps (default: the ``presteps`` argument), so one
comparison can hold several step counts. Latency is always ``T_total = presteps + T``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from torch import nn

from ann2snn.config import PRESIM_METHODS, ConversionConfig
from ann2snn.errors import ConfigError
from ann2snn.evaluate.comparison import ComparisonReport
from ann2snn.evaluate.metrics import evaluate
from ann2snn.limits import check_int, check_timesteps

METHOD_SPECS: dict[str, dict[str, Any]] = {
    "serial": {"method": "serial", "neuron": "if"},
    "parallel": {"method": "parallel"},
    "srp": {"method": "srp", "neuron": "if"},
    "cos": {"method": "cos", "neuron": "if"},
    "signed": {"method": "serial", "neuron": "signed_if"},
    "parallel+da": {"method": "parallel", "calibration": "da"},
}
DEFAULT_METHODS = ("serial", "parallel", "srp", "cos", "signed")
DEFAULT_PRESTEPS = 4


def parse_method(spec: str, presteps: int = DEFAULT_PRESTEPS) -> tuple[str, dict[str, Any]]:
    """``"cos:8"`` → ``("cos:8", {"method": "cos", "neuron": "if", "presteps": 8})``; ``"parallel"`` → no presteps.

    Returns the label used in reports and the ConversionConfig fields of that method.
    """
    if not isinstance(spec, str):
        raise ConfigError(f"method {spec!r} must be a string such as 'srp' or 'cos:4'")
    name, _, steps = spec.strip().partition(":")
    if name not in METHOD_SPECS:
        raise ConfigError(f"unknown method {spec!r} to compare; choose from {', '.join(METHOD_SPECS)} (e.g. 'srp:4')")
    fields = dict(METHOD_SPECS[name])
    if fields["method"] not in PRESIM_METHODS:
        if steps:
            raise ConfigError(f"method {spec!r}: only srp and cos take pre-simulation steps (':N')")
        return name, fields
    try:
        p = int(steps) if steps else presteps
    except ValueError:
        raise ConfigError(f"method {spec!r}: the pre-simulation steps after ':' must be an integer") from None
    check_int(f"method {spec!r}: presteps", p, key="presteps")
    fields["presteps"] = p
    return f"{name}:{p}", fields


def compare(
    model: nn.Module,
    loader: Iterable[Any],
    methods: Sequence[str] = DEFAULT_METHODS,
    timesteps: Sequence[int] = (1, 2, 4, 8),
    *,
    presteps: int = DEFAULT_PRESTEPS,
    config: ConversionConfig | None = None,
    calibration_data: Iterable[Any] | None = None,
    max_batches: int | None = None,
    progress: bool = False,
) -> ComparisonReport:
    """Convert ``model`` with every method and evaluate each at every T on the same ``loader``.

    Args:
        model: the trained ANN (QCFS/ClipReLU, or plain ReLU with ``calibration_data`` for thresholds).
        loader: re-iterable ``(inputs, labels)`` batches (a one-shot iterator is read into a list first).
        methods: names from :data:`METHOD_SPECS`, optionally ``"srp:N"`` / ``"cos:N"``.
        timesteps: the read steps T; SRP/COS runs take ``presteps + T`` steps in all.
        presteps: default pre-simulation steps of SRP and COS.
        config: base ConversionConfig for the shared fields (``v_init``, ``threshold_mode``, ...).
        calibration_data: input batches for data-based thresholds (plain ReLU models).
        max_batches: evaluate on at most this many batches.

    Returns:
        A :class:`ComparisonReport` with one row per (method, T).
    """
    ts = check_timesteps(timesteps)
    check_int("presteps", presteps)
    check_int("max_batches", max_batches, none_ok=True)
    specs = [parse_method(m, presteps) for m in methods]
    if not specs:
        raise ConfigError(f"methods must name at least one method, e.g. {','.join(DEFAULT_METHODS)}")
    labels = [label for label, _ in specs]
    if len(set(labels)) != len(labels):
        raise ConfigError(f"methods {labels} name a method twice")
    if iter(loader) is loader:  # a one-shot iterator: every method must see the same data
        loader = list(loader)
    if calibration_data is not None and iter(calibration_data) is calibration_data:
        calibration_data = list(calibration_data)
    base = config or ConversionConfig()
    from ann2snn.transforms.convert import convert

    rows: list[dict[str, Any]] = []
    spikes: dict[str, float] = {}
    seconds: dict[str, float] = {}
    configs: dict[str, dict[str, Any]] = {}
    ann_accuracy: float | None = None
    num_samples = 0
    for i, (label, fields) in enumerate(specs):
        cfg = base.replace(**{"presteps": 0, "neuron": "if", "calibration": None, **fields, "timesteps": max(ts)})
        if cfg.calibration is not None and calibration_data is None:
            raise ConfigError(
                f"method {label!r} calibrates on data: pass calibration_data (CLI: --calibration-batches)"
            )
        # error calibration is fitted to one T, so such methods are converted once per T
        runs = [(t, cfg.replace(timesteps=t)) for t in ts] if cfg.calibration else [(max(ts), cfg)]
        accuracy: dict[int, float] = {}
        for j, (_, run_cfg) in enumerate(runs):
            snn = convert(model, run_cfg, calibration_data=calibration_data)
            first = i == 0 and j == 0
            run_ts = (run_cfg.timesteps,) if cfg.calibration else ts
            rep = evaluate(model if first else None, snn, loader, run_ts, max_batches=max_batches, progress=progress)
            accuracy.update(rep.snn_accuracy)
            if first:
                ann_accuracy, num_samples = rep.ann_accuracy, rep.num_samples
        for t in ts:
            rows.append(
                {
                    "method": label,
                    "presteps": cfg.presteps,
                    "timesteps": t,
                    "total_timesteps": cfg.presteps + t,
                    "accuracy": accuracy[t],
                }
            )
        spikes[label] = float(sum(rep.spikes_per_sample.values()))
        seconds[label] = rep.seconds
        configs[label] = cfg.to_dict()
    return ComparisonReport(labels, ts, ann_accuracy, rows, spikes, seconds, num_samples, configs)
