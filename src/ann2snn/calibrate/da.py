"""Distribution-aware (DA) error calibration of parallel SNNs (Hao et al., ICML 2025; methods.md §3).

Every parallel neuron gets a per-channel pre-activation bias ψ_DA and amplitude correction φ_DA so that, on the
calibration data, its output matches the reference ANN (QCFS at its own L, or ``ClipReLU(θ)`` for a ReLU model).
The calibrated branch is the SNN in rate mode, which yields the exact spike counts of spike mode, so calibrating
in rate mode calibrates the SNN. Conv and linear sites are calibrated alike (channel = dim 1) unless
``sites="conv"``. No gradients.

Estimators (``estimator=``):

- ``"ema"``: the paper's rule as its authors' released code runs it, one pass, layer by layer at every batch, from
  ψ = φ = 0: ``ψ ← αψ + (1−α)·mean(z_ref − z_cal)``; the calibrated output ``a_cal`` is taken with this new ψ and
  the amplitude θ + φ of the previous batch, and the branch continues downstream with that ``a_cal``; then
  ``φ ← αφ + (1−α)·mean(a_ref − a_cal)``. With firing rate r its fixed point is
  ``φ* = (E[a_ref] − rθ)/(1 + r)``.
- ``"ema_theta"``: the same pass, but the output gap is measured at amplitude θ (φ set aside) and the branch
  continues with the new φ: fixed point ``φ* = E[a_ref] − rθ``.
- ``"mean"``: ``"ema_theta"`` with running means instead of the EMA (no start-up bias from 0).
- ``"match"``: site by site, each over all batches: φ makes the channel's output mean on the calibration set equal
  the reference's, and ψ is the shift whose mean-matched output has the least squared error to the paired
  reference activations (:func:`~ann2snn.calibrate.estimators.match_output_mse`); by default the per-channel
  threshold is searched jointly with ψ (``objective="mse_threshold"``: the SNN's level spacing θ/T can then
  follow the data instead of the trained or percentile θ). The stages run on resumable runs of both branches
  (:mod:`ann2snn.calibrate.frontier`), so every node runs once per batch and branch: the cost is linear in depth.

``sites="conv"`` calibrates only the sites on conv feature maps (``[B, C, H, W]``), as the authors' code does; the
other sites keep ψ = φ = 0.

With ``refit`` (default: :func:`auto_refit`) every Conv2d/Linear layer fed by spikes is refit in closed form
between the sites (:mod:`ann2snn.calibrate.refit`), so each site is calibrated on the refit layer in front of it.

Too little data for what is fitted gives a :class:`~ann2snn.errors.CalibrationWarning` and a ``warning:`` line in
the SNN's log: ``"match"`` with fewer than :data:`MIN_MATCH_SAMPLES` samples per channel of a site; the EMA on
fewer batches than ``1/(1 − α)``. A refit layer with fewer calibration rows than parameters is still fit (ridge
toward the ANN's weights, λ chosen on held-out images).
"""

from __future__ import annotations

import copy
import math
import sys
import time
import warnings
from collections.abc import Iterable
from contextlib import closing
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from ann2snn.calibrate.estimators import ema_update, match_output_mean, match_output_mse, mean_update
from ann2snn.calibrate.frontier import Frontiers
from ann2snn.calibrate.observers import check_batches_fit, iter_input_batches
from ann2snn.calibrate.reference import (
    Lockstep,
    channel_mean,
    channel_rows,
    channel_shape,
    reference_graph,
)
from ann2snn.calibrate.refit import DeviceGenerator, GramPair, apply_refit, refit_support
from ann2snn.config import CALIBRATION_SITES, ESTIMATORS
from ann2snn.errors import CalibrationError, CalibrationWarning, ConfigError
from ann2snn.evaluate.progress import progress_bar
from ann2snn.layers.neurons import RATE_MODE, ParallelIFNeuron
from ann2snn.simulate.model import SpikingModel

MATCH_SAMPLES = 1 << 15  # pre-activations kept per channel and site for output-mean matching
MATCH_OBJECTIVES = ("mse", "mean", "mse_threshold")
MIN_MATCH_SAMPLES = 1000  # fewer samples per channel and site: "match" warns that its fit may not carry over
THRESHOLD_SCALES = (1.0, 0.8, 0.64, 0.5, 0.4, 0.32, 0.25, 0.2)  # threshold candidates of "mse_threshold"


def calibrate_da(
    snn: SpikingModel,
    ann: nn.Module,
    data: Iterable[Any] | None,
    *,
    estimator: str = "match",
    ema_alpha: float = 0.99,
    max_batches: int | None = 16,
    progress: bool = True,
    objective: str = "mse_threshold",
    refit: bool | None = None,
    sites: str = "all",
) -> SpikingModel:
    """A copy of the parallel ``snn`` with DA-calibrated ψ_DA / φ_DA; ``snn`` and ``ann`` are not modified.

    Args:
        snn: a parallel SNN from :func:`ann2snn.convert`.
        ann: the ANN it was converted from (the reference branch).
        data: calibration batches (tensors or ``(x, y)`` pairs); at most ``max_batches`` are used.
        estimator: ``"match"``, ``"ema"``, ``"ema_theta"`` or ``"mean"`` (see the module docstring).
        ema_alpha: α of the EMA.
        max_batches: cap on the batches read from ``data``.
        progress: report progress (a bar on a terminal, a line per step in logs).
        objective: how ``"match"`` chooses among the mean-matching corrections: ``"mse_threshold"`` (the default:
            the per-channel threshold θ' = s·θ, s in :data:`THRESHOLD_SCALES`, and ψ of least squared error to the
            reference activations), ``"mse"`` (ψ only, θ kept) or ``"mean"`` (ψ where the output mean at amplitude
            θ crosses the reference mean). The last two are ablations.
        refit: also refit the weights of every Conv2d/Linear layer fed by spikes, in graph order, by ridge
            regression onto the ANN's pre-activations (:mod:`ann2snn.calibrate.refit`); ``"match"`` only.
            ``None`` (default): :func:`auto_refit`, where it pays (measured in docs/calibration.md).
        sites: ``"all"`` (default) calibrates every parallel neuron; ``"conv"`` only those on conv feature maps
            (inputs with spatial dims), as the authors' code; the others keep ψ_DA = φ_DA = 0.

    Returns:
        The calibrated SNN; its ``log`` says what was calibrated, with which estimator, in how long.

    Raises:
        CalibrationError: no batches, or ``ann`` is not the model ``snn`` came from.
    """
    result = copy.deepcopy(snn)
    calibrate_da_(
        result,
        ann,
        data,
        estimator=estimator,
        ema_alpha=ema_alpha,
        max_batches=max_batches,
        progress=progress,
        objective=objective,
        refit=refit,
        sites=sites,
    )
    return result


def calibrate_da_(
    snn: SpikingModel,
    ann: nn.Module,
    data: Iterable[Any] | None,
    *,
    estimator: str = "match",
    ema_alpha: float = 0.99,
    max_batches: int | None = 16,
    progress: bool = True,
    objective: str = "mse_threshold",
    refit: bool | None = None,
    sites: str = "all",
) -> SpikingModel:
    """In-place form of :func:`calibrate_da` (for an SNN the caller owns, e.g. inside ``convert``)."""
    if not isinstance(snn, SpikingModel) or snn.execution != "parallel" or snn.config.method != "parallel":
        raise ConfigError("DA calibration needs a parallel SNN: convert with ConversionConfig(method='parallel')")
    if estimator not in ESTIMATORS:
        raise ConfigError(f"estimator={estimator!r} is not supported; choose one of {', '.join(ESTIMATORS)}")
    if sites not in CALIBRATION_SITES:
        raise ConfigError(f"sites={sites!r} is not supported; choose one of {', '.join(CALIBRATION_SITES)}")
    if objective not in MATCH_OBJECTIVES:
        raise ConfigError(f"objective={objective!r} is not supported; choose one of {', '.join(MATCH_OBJECTIVES)}")
    if refit is None:
        refit = auto_refit(snn, estimator)
    if refit and estimator != "match":
        raise ConfigError(f"weight refit runs with estimator='match' (layer by layer), not {estimator!r}")
    neurons = {n: m for n, m in snn.neurons().items() if isinstance(m, ParallelIFNeuron)}
    names = [s.name for s in snn.sites if s.name in neurons]
    reference = reference_graph(ann, snn)
    param = next(snn.parameters(), None)
    device = param.device if param is not None else torch.device("cpu")
    dtype = param.dtype if param is not None else torch.get_default_dtype()
    batches = [x.to(device=device, dtype=dtype) for x in iter_input_batches(data, max_batches)]
    check_batches_fit(reference, batches)
    calibrated = names if sites == "all" else _conv_sites(reference, names, batches[0])
    T = snn.timesteps
    snn.reset()
    snn._set_parallel(RATE_MODE, T)
    for m in neurons.values():  # start uncalibrated
        theta = _tensor(m.threshold)
        m.bias = torch.zeros((), dtype=theta.dtype, device=theta.device)
        m.amplitude_correction = torch.zeros((), dtype=theta.dtype, device=theta.device)
    lockstep = Lockstep(reference, snn.net, calibrated)
    notes = _Notes()
    needed = math.ceil(round(1 / (1 - ema_alpha), 6)) if ema_alpha < 1 else math.inf  # the EMA's memory
    if estimator.startswith("ema") and len(batches) < needed:
        notes.warn(
            f"DA calibration: the EMA (alpha={ema_alpha:g}) starts from 0 and after {len(batches)} batch(es) holds "
            f"only {1 - ema_alpha ** len(batches):.0%} of the gap it estimates (it needs about {needed}); use "
            "estimator='mean' or 'match', or more batches"
        )
    start = time.perf_counter()
    if estimator == "match":
        stages = _stages(snn, calibrated, refit)
        _match(lockstep, reference, neurons, stages, batches, T, progress, objective, notes)
    else:
        _one_pass(lockstep, reference, neurons, batches, estimator, ema_alpha, progress, T)
    seconds = time.perf_counter() - start
    snn.reset()
    snn.log.extend(f"warning: {w}" for w in notes.warnings)
    snn.log.append(
        f"DA calibration ({estimator}{f', alpha={ema_alpha:g}' if estimator.startswith('ema') else ''}"
        f"{f', objective={objective}' if estimator == 'match' else ''}{', weight refit' if refit else ''}) of "
        f"{len(calibrated)} site(s){_skipped_note(names, calibrated)} at T={T} on {len(batches)} batch(es) in "
        f"{seconds:.2f} s; per-channel ψ_DA and φ_DA"
        + (f"; frontier peak {notes.frontier_bytes / 2**20:.1f} MiB" if estimator == "match" else "")
    )
    if refit:
        snn.log.append("weight refit: " + ("; ".join(notes.refit) or "no Conv2d/Linear layer is fed by spikes"))
    snn.log.append(_analog_note(snn))
    snn.calibration_seconds = seconds  # type: ignore[assignment]
    return snn


def auto_refit(snn: SpikingModel, estimator: str) -> bool:
    """The default of weight refit: with ``"match"``, at T = 1 or when a site is a plain ReLU (training-free).

    Measured on four calibration sets (docs/calibration.md): at T = 1 the refit cut the gap of every model; for a
    plain-ReLU model it helped at every T (most at T = 2); for a QCFS model at T ≥ 2 it changed nothing on average
    and costs 3–5× the calibration time.
    """
    return estimator == "match" and (snn.timesteps == 1 or any(s.source in ("relu", "clamp") for s in snn.sites))


def _analog_note(snn: SpikingModel) -> str:
    """What stays analog in a parallel SNN: the layers fed by the input, and the readout."""
    nodes = list(snn.net.graph.nodes)
    first = sorted({u.name for n in nodes if n.op == "placeholder" for u in n.users})
    out = [str(a) for n in nodes if n.op == "output" for a in n.args]
    return (
        f"analog: {', '.join(first)} take the analog input (direct encoding, the same current every step); "
        f"the readout {', '.join(out)} is the time mean; every other layer acts on spikes"
    )


def _one_pass(
    lockstep: Lockstep,
    reference: nn.Module,
    neurons: dict[str, ParallelIFNeuron],
    batches: list[Tensor],
    estimator: str,
    alpha: float,
    progress: bool,
    T: int,
) -> None:
    """``ema`` / ``ema_theta`` / ``mean``: one pass over the batches, every site updated in graph order."""
    count = 0

    def update(estimate: Tensor, value: Tensor) -> Tensor:
        return mean_update(estimate, value, count) if estimator == "mean" else ema_update(estimate, value, alpha)

    def site_fn(name: str, z_ref: Tensor, z_cal: Tensor) -> tuple[Tensor, Tensor]:
        neuron = neurons[name]
        a_ref = reference.get_submodule(name)(z_ref)
        shape = channel_shape(z_cal)
        dtype = _tensor(neuron.threshold).dtype
        gap_z = channel_mean(z_ref - z_cal).to(dtype)
        psi = update(_per_channel(neuron.bias, gap_z), gap_z)  # this batch's ψ is used right away
        neuron.set_bias(psi.reshape(shape))  # per batch: no device sync to test it for zero
        phi_old = _per_channel(neuron.amplitude_correction, gap_z)
        if estimator == "ema":  # the gap at amplitude θ + φ_old; the branch goes on with that output
            a_cal = neuron(z_cal)
            gap_a = channel_mean(a_ref - a_cal).to(dtype)
            neuron.amplitude_correction = update(phi_old, gap_a).reshape(shape)
            return a_ref, a_cal
        neuron.amplitude_correction = torch.zeros_like(phi_old).reshape(shape)
        gap_a = channel_mean(a_ref - neuron(z_cal)).to(dtype)  # the gap at amplitude θ
        neuron.amplitude_correction = update(phi_old, gap_a).reshape(shape)
        return a_ref, neuron(z_cal)  # the branch goes on with the new φ

    what = f"DA calibration ({estimator}) T={T}"
    with closing(progress_bar(batches, what, enabled=progress, total=len(batches))) as items:
        for x in items:
            count += 1
            lockstep.run(x, site_fn)


def _per_channel(value: object, like: Tensor) -> Tensor:
    """A neuron's ψ_DA or φ_DA buffer as a ``[C]`` vector (a scalar 0 before the first update)."""
    t = _tensor(value)
    return t.reshape(-1) if t.dim() else torch.zeros_like(like) + t


def _conv_sites(reference: nn.Module, names: list[str], x: Tensor) -> list[str]:
    """The sites among ``names`` whose input has spatial dims (``[B, C, H, ...]``), from one sample of ``x``."""
    spatial: dict[str, bool] = {}
    hooks = [
        reference.get_submodule(n).register_forward_pre_hook(
            lambda _m, args, n=n: spatial.__setitem__(n, args[0].dim() > 2)
        )
        for n in names
    ]
    try:
        with torch.no_grad():
            reference(x[:1])
    finally:
        for h in hooks:
            h.remove()
    return [n for n in names if spatial.get(n, False)]


def _skipped_note(names: list[str], calibrated: list[str]) -> str:
    skipped = len(names) - len(calibrated)
    return f" (conv sites only; {skipped} other site(s) uncalibrated)" if skipped else ""


class _SiteStats:
    """Statistics of one site over the calibration batches: reference output mean, gap, paired samples."""

    def __init__(self, per_batch: int, seed: int = 0) -> None:
        self.ref_sum: Tensor | float = 0.0
        self.gap_sum: Tensor | float = 0.0
        self.count = 0
        self.z: list[Tensor] = []
        self.a: list[Tensor] = []
        self.shape: tuple[int, ...] = ()
        self.per_batch = per_batch
        self.gen = DeviceGenerator(seed)  # the random sample positions

    def add(self, z_ref: Tensor, z_cal: Tensor, a_ref: Tensor) -> None:
        n = z_cal.numel() // z_cal.shape[1]
        self.ref_sum = self.ref_sum + channel_mean(a_ref) * n
        self.gap_sum = self.gap_sum + channel_mean(z_ref - z_cal) * n
        self.count += n
        rows, ref_rows = channel_rows(z_cal.detach()), channel_rows(a_ref.detach())
        if rows.shape[1] > self.per_batch:  # the same random positions for both
            gen = self.gen.on(rows.device)
            keep = torch.randperm(rows.shape[1], generator=gen, device=rows.device)[: self.per_batch]
            rows, ref_rows = rows[:, keep], ref_rows[:, keep]
        self.z.append(rows)
        self.a.append(ref_rows)
        self.shape = channel_shape(z_cal)


def _stages(snn: SpikingModel, sites: list[str], refit: bool) -> list[tuple[str, str]]:
    """``("site", name)`` for every calibrated site and, with ``refit``, ``("layer", name)`` for every Conv2d /
    Linear module, in graph order (a module called more than once is not refit)."""
    calls = [str(n.target) for n in snn.net.graph.nodes if n.op == "call_module"]
    stages: list[tuple[str, str]] = []
    for name in dict.fromkeys(calls):
        if name in sites:
            stages.append(("site", name))
        elif refit and isinstance(snn.net.get_submodule(name), (nn.Conv2d, nn.Linear)) and calls.count(name) == 1:
            stages.append(("layer", name))
    return stages


def _match(
    lockstep: Lockstep,
    reference: nn.Module,
    neurons: dict[str, ParallelIFNeuron],
    stages: list[tuple[str, str]],
    batches: list[Tensor],
    T: int,
    progress: bool,
    objective: str,
    notes: _Notes,
) -> None:
    """Exact output-mean matching site by site, and weight refits, in graph order (earlier stages already done).

    One resumable run of both branches per batch (:class:`~ann2snn.calibrate.frontier.Frontiers`): every stage
    advances the runs to its node, so every node runs once per batch and branch whatever the depth.
    """
    per_batch = max(1, MATCH_SAMPLES // len(batches))

    def pass_through(name: str, z_ref: Tensor, z_cal: Tensor) -> tuple[Tensor, Tensor]:
        return reference.get_submodule(name)(z_ref), neurons[name](z_cal)

    frontiers = Frontiers(lockstep, batches, pass_through)
    few: list[str] = []
    what = f"DA calibration (match) T={T}"
    try:
        with closing(progress_bar(stages, what, enabled=progress, total=len(stages))) as items:
            for kind, target in items:
                if kind == "layer":
                    _refit_layer(frontiers, target, notes)
                    continue
                stats = _SiteStats(per_batch)
                with torch.no_grad():
                    for z_ref, z_cal in frontiers.advance(target):
                        stats.add(z_ref, z_cal, reference.get_submodule(target)(z_ref))
                if not stats.z:
                    raise CalibrationError(f"DA calibration: site '{target}' was never reached by the calibration data")
                if stats.count < MIN_MATCH_SAMPLES:
                    few.append(f"{target} ({stats.count})")
                _set_site(neurons[target], stats, T, objective)
    finally:
        notes.frontier_bytes = frontiers.peak
        frontiers.close()
    if few:
        notes.warn(
            f"DA calibration: fewer than {MIN_MATCH_SAMPLES} samples per channel at site(s) {', '.join(few)}; "
            "ψ_DA, φ_DA and the threshold are fitted on few values and may not carry over to new inputs: "
            "pass more calibration batches"
        )


def _set_site(neuron: ParallelIFNeuron, stats: _SiteStats, T: int, objective: str) -> None:
    """θ (objective ``mse_threshold``), ψ_DA and φ_DA of one site from its statistics."""
    theta = _tensor(neuron.threshold)
    samples = torch.cat(stats.z, dim=1)
    th = torch.broadcast_to(theta.reshape(-1), (samples.shape[0],))
    ref_mean = _tensor(stats.ref_sum) / stats.count
    if objective == "mean":
        psi, phi = match_output_mean(samples, ref_mean, th, T, prior=_tensor(stats.gap_sum) / stats.count)
    else:
        scales = THRESHOLD_SCALES if objective == "mse_threshold" else (1.0,)
        new_th, psi, phi = match_output_mse(samples, torch.cat(stats.a, dim=1), ref_mean, th, T, scales=scales)
        if objective == "mse_threshold":
            neuron.threshold = new_th.reshape(stats.shape).to(theta.dtype)
    neuron.bias = psi.reshape(stats.shape).to(theta.dtype)
    neuron.amplitude_correction = phi.reshape(stats.shape).to(theta.dtype)


def _refit_layer(frontiers: Frontiers, name: str, notes: _Notes) -> None:
    """Refit one Conv2d/Linear layer of the SNN on its inputs in both branches (refit.py); log the outcome.

    Fewer calibration rows than parameters per output channel are fine: the ridge term pulls the fit toward the
    ANN's weights and λ (or keeping the weights) is chosen on held-out images.
    """
    module = frontiers.lockstep.cal.get_submodule(name)
    why_not = refit_support(module)
    if why_not is not None:
        notes.refit.append(f"{name} kept ({why_not})")
        return
    assert isinstance(module, (nn.Conv2d, nn.Linear))
    grams = GramPair(module)
    for x_ref, x_cal in frontiers.advance(name):
        grams.add(x_ref, x_cal)
    if not grams.differs:
        return  # fed by the analog input (or by nothing spiking): the SNN already computes the ANN's layer
    new, lam = grams.solve()
    if new is None:
        notes.refit.append(f"{name} kept (no λ lowers the held-out error)")
        return
    apply_refit(module, new)
    few = f", {grams.rows} rows < {grams.parameters} parameters" if grams.rows < grams.parameters else ""
    notes.refit.append(f"{name} refit (λ={lam:g}{few})")


class _Notes:
    """What a calibration run reports beyond its parameters: refit outcomes, warnings, frontier memory."""

    def __init__(self) -> None:
        self.refit: list[str] = []
        self.warnings: list[str] = []
        self.frontier_bytes = 0

    def warn(self, message: str) -> None:
        """A :class:`~ann2snn.errors.CalibrationWarning` now, and a line of the SNN's log later."""
        self.warnings.append(message)
        package = str(Path(__file__).resolve().parents[1])
        frame, level = sys._getframe(0), 1  # point the warning at the first caller outside ann2snn
        while frame.f_back is not None and str(Path(frame.f_code.co_filename).resolve()).startswith(package):
            frame, level = frame.f_back, level + 1
        warnings.warn(message, CalibrationWarning, stacklevel=level)


def _tensor(value: object) -> Tensor:
    """A module buffer (typed ``Tensor | Module`` by nn.Module) or accumulated statistic, as a Tensor."""
    if not isinstance(value, Tensor):
        raise CalibrationError(f"DA calibration: expected a tensor, got {type(value).__name__}")
    return value
